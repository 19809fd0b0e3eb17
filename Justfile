# Sweepledger's everyday commands. `just` alone runs the tests and the linters.

default: test lint

# Install for development (strict editable mode keeps the sweepledger.* names).
dev:
    pip install -e '.[dev]' --config-settings editable_mode=strict

# The test suite (end-to-end tests run the installed `sweep` command).
test *ARGS:
    pytest {{ARGS}}

# ruff (lint + format check) and mypy strict on every package.
lint:
    ruff check .
    ruff format --check .
    mypy

# Format the code.
fmt:
    ruff format .
    ruff check --fix .

# A full sweep of the built-in demo workspace into demo.db.
demo DB="demo.db":
    sweep run --db {{DB}} --full-sweep --exhaust --services gmail,calendar,chat,drive

# Integrity + COMPLETE invariants of a ledger (the CI gate).
check DB="demo.db":
    sweep check --db {{DB}} --require-complete

# Benchmarks: print their figures (not part of the tests).
bench *ARGS:
    python bench/run_all.py {{ARGS}}
