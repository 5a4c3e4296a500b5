# s3-oss-sync: the two commands a newcomer needs are `make demo` and `make test`.

VENV    := .venv
PYTHON  := $(VENV)/bin/python
PYTEST  := env -u AWS_CA_BUNDLE $(PYTHON) -m pytest
LOCAL   := env -u AWS_CA_BUNDLE

# The binaries (and the report page example) the local stack and the Python tests run, built in
# one cargo invocation over the whole workspace: cargo then resolves the features `cargo test
# --workspace` resolves, so these and the Rust tests share every dependency they build (after
# rust-test, only the three functions' own crates are compiled here).
STACK_BUILD := cargo build --workspace --bin oss-emulator --bin sync --bin report --bin ctl --example report_page

# Parallel pytest workers (pytest-xdist) for the Python tests, each with its own moto and OSS
# emulator; most tests wait on queue visibility timeouts and delayed rechecks, so more workers
# than cores pay. PYTEST_WORKERS=0 runs them in one process.
PYTEST_WORKERS ?= 4

.PHONY: audit fuzz sim soak demo test check-architecture lint template-lint rust-test python-test bench build sam-validate sam-build deploy venv stop clean

## demo: start the local stack, drive real S3 events, show what arrived
demo: venv
	$(STACK_BUILD)
	$(LOCAL) $(PYTHON) scripts/demo.py

## test: the layer rule, formatting, lints, and every Rust and Python test (the stack starts and
## stops itself)
test: check-architecture lint template-lint rust-test python-test

## check-architecture: which module of shared/src may import which (docs/ARCHITECTURE.md), with
## the checker's own self-test first; Python's standard library only, about a second
check-architecture:
	python3 scripts/test_check_architecture.py
	python3 scripts/check_architecture.py
	@# The Lambda functions build the library without `control` (ctl's pause/resume, CloudWatch,
	@# CloudFormation, inventories), as `sam build` builds each on its own.
	@if cargo tree -p sync -p report -e features -i s3-oss-sync-shared --prefix none | grep -F 'feature "control"'; then \
	    echo "check-architecture: the sync or report function builds the library with ctl's 'control' feature" >&2; exit 1; \
	else echo "architecture: the sync and report functions build the library without 'control'"; fi

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

## template-lint: the SAM template through samtranslator, then cfn-lint on the result
template-lint: venv
	$(LOCAL) $(PYTHON) scripts/lint_template.py template.yaml

rust-test:
	$(LOCAL) cargo test --workspace

## python-test: tests/python on pytest-xdist workers, then the tests marked `alone` by themselves
python-test: venv
	$(STACK_BUILD)
	$(PYTEST) -q -n $(PYTEST_WORKERS) --dist loadgroup -m "not alone" tests/python; \
	    parallel=$$?; [ $$parallel -eq 0 ] || echo "python-test: the parallel pass failed (exit $$parallel); see above"; \
	    $(PYTEST) -q -m alone tests/python && exit $$parallel

## audit: licences, sources and wildcard versions of every dependency (cargo-deny, deny.toml)
audit:
	cargo deny check licenses bans sources

## fuzz: the property-test fuzz targets for 1,000,000 cases each (make test runs 2,000; a few minutes)
fuzz:
	FUZZ_CASES=1000000 cargo test --release -p s3-oss-sync-shared --test fuzz

## sim: the seeded protocol simulation, 1,000,000 schedules in release (make test runs 10,000; about 5 CPU-minutes)
sim:
	SIM_SCHEDULES=1000000 cargo test --release -p s3-oss-sync-shared --test simulation

## soak: 10,000 events under chaos on 127.0.0.1, then the invariants (moto-bound: 2 to 4 events a second on two cores)
soak: venv
	$(STACK_BUILD)
	$(LOCAL) $(PYTHON) scripts/soak.py

## bench: run the benchmarks on 127.0.0.1 and rewrite BENCHMARKS.md (reports, asserts nothing)
bench: venv
	python3 scripts/bench.py

## build: release bootstraps of both functions with cargo-lambda (arm64 where the target is installed)
build: venv
	scripts/build_bootstraps.sh

## sam-validate: sam validate --lint (cfn-lint through the SAM CLI; offline, no credentials)
sam-validate: venv
	$(LOCAL) SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam validate --lint --region us-east-1 --template-file template.yaml

## sam-build: sam build --beta-features (rust-cargolambda, arm64) into .aws-sam/build, with the SAM
## CLI, cargo-lambda and zig from the venv
sam-build: venv
	scripts/sam_build.sh

## deploy: sam-build, then sam deploy --guided (needs AWS credentials; the SAM CLI is the venv's)
deploy: sam-build
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 sam deploy --guided

## venv: the Python tools (moto, the official OSS SDK, the AWS SAM CLI, cargo-lambda, zig, ...)
## pinned in requirements-dev.txt
venv: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

## stop: stop any local-stack process a crashed run left behind
stop:
	@if [ -x $(PYTHON) ]; then $(PYTHON) tests/python/stack.py stop; fi

clean: stop
	cargo clean
	rm -rf $(VENV) .stack .aws-sam
