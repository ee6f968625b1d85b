# The verbs a newcomer needs. Everything the stack runs lives under .run/ (git-ignored).
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv/bin
PYTEST_ARGS ?=
BENCH_ARGS ?=
DELIVERIES_BENCH_ARGS ?=
# Third-party CRDs for the chart's dry-run tests: a local mirror beside the checkout when there is
# one; otherwise the tests fetch the pinned upstream files (scripts/third-party-crds.sh).
RTO_THIRD_PARTY_CRDS ?= $(wildcard $(abspath ../shared/k8s-crds))
export RTO_THIRD_PARTY_CRDS

.PHONY: help install up down status logs lint test test-unit bench clean api-client web audit lock

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: ## install what is missing: Debian packages, .venv, the Kafka broker's jars, Mailpit
	@scripts/install.sh

up: install ## start servers and services, wait until healthy, print the URLs
	@$(VENV)/python -m devstack up

down: ## stop everything `make up` started and check its ports are free
	@if [[ -x $(VENV)/python ]]; then $(VENV)/python -m devstack down; fi

status: ## what runs, with pids and ports
	@$(VENV)/python -m devstack status

logs: ## the tail of every log (.run/logs/<name>.log; follow one: python -m devstack logs -f NAME)
	@$(VENV)/python -m devstack logs

lint: ## ruff (lint + format check), mypy strict, import contracts
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy
	$(VENV)/lint-imports

test: install lint ## install what is missing, lint, then the whole test suite
	@if [[ -x scripts/k8s-testenv/build.sh ]]; then scripts/k8s-testenv/build.sh; fi
	npm --prefix frontend test
	$(VENV)/python -m devstack.web build
	$(VENV)/pytest --ignore=tests/k8s/node $(PYTEST_ARGS)
	$(MAKE) test-cluster

test-unit: ## the fast tests only (no servers)
	$(VENV)/pytest tests/unit $(PYTEST_ARGS)

bench: install ## the benchmarks: orders end to end (starts the stack if needed), then notification deliveries
	$(VENV)/python -m bench $(BENCH_ARGS)
	$(VENV)/python -m bench.deliveries $(DELIVERIES_BENCH_ARGS)

api-client: install ## regenerate the web apps' typed API client (frontend/shared) from the services
	$(VENV)/python scripts/api-client.py

web: install ## build the customer app and the admin dashboard (frontend/*/dist) within their budget
	$(VENV)/python -m devstack.web build

audit: install ## pip-audit the locked dependencies (needs PyPI's vulnerability data; fails when a package cannot be checked)
	$(VENV)/pip-audit --strict --disable-pip --require-hashes -r requirements.lock -s pypi --progress-spinner off

lock: install ## re-resolve requirements.lock (images) and requirements-dev.lock (.venv) from pyproject.toml; UPGRADE=1 takes the newest
	@scripts/lock.sh

clean: down ## stop the stack and delete .run/ (all local data and logs)
	@if [[ -x $(VENV)/python ]]; then $(VENV)/python -m devstack clean; else rm -rf .run; fi

.PHONY: images images-smoke images-backing images-backing-smoke

images: ## build every image we ship (services, operator, web apps) with Docker, or buildah without it
	$(VENV)/python scripts/images/build.py build

images-smoke: ## start each built image: /healthz answers, no process runs as root
	$(VENV)/python scripts/images/build.py smoke

images-backing: ## the node's own images: PostgreSQL, Redis, RabbitMQ, Kafka (Debian packages, Maven jars) and Traefik (Go module), with buildah
	$(VENV)/python scripts/images/backing.py build
	$(VENV)/python scripts/images/ingress.py build

images-backing-smoke: ## start each backing image: the server answers, as its non-root user only
	$(VENV)/python scripts/images/backing.py smoke

.PHONY: cluster-up cluster-down test-cluster

cluster-up: ## a real one-node cluster here (containerd, kubelet, kube-proxy, CoreDNS in a network namespace of its own)
	@scripts/k8s-testenv/build.sh --node
	$(VENV)/python -m k8s.node up
	$(VENV)/python scripts/images/build.py build --only services,operator
	$(VENV)/python -m k8s.node load localhost/realtimeorder:dev localhost/realtimeorder-operator:dev

cluster-down: ## stop the node and undo everything it changed on the host (safe to repeat)
	$(VENV)/python -m k8s.node down

test-cluster: ## the node's tests (make test runs them last; they need root): our image in a pod under Pod Security restricted, then the chart end to end through the ingress
	@scripts/k8s-testenv/build.sh --node
	RTO_CLUSTER_TESTS=1 $(VENV)/pytest tests/k8s/node $(PYTEST_ARGS)
