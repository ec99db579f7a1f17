# djinit tasks. `just` lists them.
set shell := ["bash", "-euo", "pipefail", "-c"]

# Command components, each a crate in components/<name> building <name>.wasm: the list in
# components/commands.txt, which the runner's command table is checked against (a unit test).
components := trim(replace(read("components/commands.txt"), "\n", " "))

default:
    @just --list

# Build the components (wasm32-wasip2), precompile them, and build target/release/djinit.
build:
    cargo build --profile component --target wasm32-wasip2 {{ prepend("-p ", components) }}
    mkdir -p target/components
    for c in {{ components }}; do cp target/wasm32-wasip2/component/$c.wasm target/components/; done
    cargo run --release -q -p djinit-compile -- --out-dir target/precompiled target/components/*.wasm
    cargo build --release -p djinit

# Python venv with Django 5.2 and the reference Python commands (used by tests and bench).
venv:
    test -x .venv/bin/python || python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -r tests/requirements.txt

# What only the tests need (the wasmtime CLI, Node.js for jco): `.ci/setup --tests`.
test-tools:
    bash .ci/setup --tests

# Unit tests, then integration tests against throwaway PostgreSQL clusters.
test: build venv test-tools
    cargo test --release --workspace --exclude djinit-compile

# Start a throwaway PostgreSQL and show what every command does against it; exits 1 if any step
# does not do what the tour says.
demo: build venv
    cargo run --release -q -p djinit-tests --bin demo

# Benchmarks against baselines, printed as ratios.
bench: build venv
    cargo run --release -q -p djinit-tests --bin bench

# Formatting and lints.
lint:
    cargo fmt --all -- --check
    cargo clippy --release --workspace --exclude djinit-compile --all-targets -- -D warnings
    cargo clippy --profile component --target wasm32-wasip2 {{ prepend("-p ", components) }} -- -D warnings
