# djinit tasks. `just` lists them.
set shell := ["bash", "-euo", "pipefail", "-c"]

# Command components, each a crate in components/<name> building <name>.wasm.
components := "wait4db dns-discover ensureadmin lockedmigrate checkmigrations"

default:
    @just --list

# The djinit that ships: static (no dynamic dependencies), every command embedded.
target := "x86_64-unknown-linux-musl"
djinit := "target/" + target + "/dist/djinit"
version := `sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1`

# podman/buildah read .ci/containers.conf (runc, no default ulimits) unless CONTAINERS_CONF is set.
export CONTAINERS_CONF := env_var_or_default("CONTAINERS_CONF", justfile_directory() / ".ci/containers.conf")

# Build the components (wasm32-wasip2), precompile them, and build the static djinit
# (target/x86_64-unknown-linux-musl/dist/djinit). Nothing changed: nothing is rewritten or relinked.
build:
    cargo build --profile component --target wasm32-wasip2 {{ prepend("-p ", components) }}
    mkdir -p target/components
    for c in {{ components }}; do cmp -s target/wasm32-wasip2/component/$c.wasm target/components/$c.wasm || cp target/wasm32-wasip2/component/$c.wasm target/components/; done
    cargo run --release -q -p djinit-compile -- --out-dir target/precompiled target/components/*.wasm
    cargo build --profile dist --target {{ target }} -p djinit

# The container image localhost/djinit:<version> and :latest (FROM scratch, the static djinit only).
image: build pack-image

# `just image` from the djinit already built (the tests run this once per run).
[private]
pack-image:
    test -x {{ djinit }} || { echo "{{ djinit }} is missing: run just build" >&2; exit 1; }
    mkdir -p target/image
    cmp -s {{ djinit }} target/image/djinit || cp {{ djinit }} target/image/djinit
    podman build -q -f runner/Containerfile --build-arg VERSION={{ version }} -t localhost/djinit:{{ version }} -t localhost/djinit:latest target/image

# The wheel target/wheels/djinit-<version>-py3-none-<linux tags>.whl: djinit on PATH plus djinit_django.
wheel: build pack-wheel

# `just wheel` from the djinit already built (the tests run this once per run).
[private]
pack-wheel:
    python3 python/build_wheel.py --binary {{ djinit }} --version {{ version }} --out-dir target/wheels

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
bench: build venv image wheel
    cargo run --release -q -p djinit-tests --bin bench

# Formatting and lints.
lint:
    cargo fmt --all -- --check
    cargo clippy --release --workspace --exclude djinit-compile --all-targets -- -D warnings
    cargo clippy --profile component --target wasm32-wasip2 {{ prepend("-p ", components) }} -- -D warnings
