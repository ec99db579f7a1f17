# djinit tasks. `just` lists them.
set shell := ["bash", "-euo", "pipefail", "-c"]

# Command components, each a crate in components/<name> building <name>.wasm: the list in
# components/commands.txt, which the runner's command table is checked against (a unit test).
components := trim(replace(read("components/commands.txt"), "\n", " "))

default:
    @just --list

# The djinit that ships: static (no dynamic dependencies), every command embedded.
target := "x86_64-unknown-linux-musl"
djinit := "target/" + target + "/dist/djinit"
version := `sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1`

# podman/buildah read .ci/containers.conf (runc, no default ulimits) unless CONTAINERS_CONF is set.
export CONTAINERS_CONF := env_var_or_default("CONTAINERS_CONF", justfile_directory() / ".ci/containers.conf")

# Build the components (wasm32-wasip2), precompile them, and build the static djinit
# (target/x86_64-unknown-linux-musl/dist/djinit). Make-like: a component is precompiled again only when
# its .wasm or djinit-compile changed, and only changed bytes are written, so an unchanged tree
# rewrites nothing and does not relink djinit.
build:
    cargo build --profile component --target wasm32-wasip2 {{ prepend("-p ", components) }}
    mkdir -p target/components
    for c in {{ components }}; do cmp -s target/wasm32-wasip2/component/$c.wasm target/components/$c.wasm || cp target/wasm32-wasip2/component/$c.wasm target/components/; done
    cargo build --release -q -p djinit-compile
    mkdir -p target/precompiled-stamps
    stale=(); for c in {{ components }}; do s=target/precompiled-stamps/$c; [ $s -nt target/components/$c.wasm ] && [ $s -nt target/release/djinit-compile ] && [ -f target/precompiled/$c.cwasm ] || stale+=($c); done; for c in "${stale[@]}"; do target/release/djinit-compile --out-dir target/precompiled target/components/$c.wasm && touch target/precompiled-stamps/$c; done
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
bench *ARGS: build venv image wheel
    cargo run --release -q -p djinit-tests --bin bench -- {{ ARGS }}

# Formatting and lints.
lint:
    cargo fmt --all -- --check
    cargo clippy --release --workspace --exclude djinit-compile --all-targets -- -D warnings
    cargo clippy --profile component --target wasm32-wasip2 {{ prepend("-p ", components) }} -- -D warnings
