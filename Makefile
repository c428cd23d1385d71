# rtstack: deploy the real-time Django stack (Redis, Centrifugo, Django/gunicorn, nginx) with Ansible.
#   make up      deploy the stack into local test hosts (Docker containers) and print the chat URL
#   make down    remove the local test hosts
#   make test    lint, app tests, bad-input tests and both molecule scenarios (what CI runs)
#   make bench   redeploy the local hosts fresh (timed), then load both realtime paths; results in bench/results/
#   RTSTACK_DEBIAN_RELEASE=bookworm make up   the local hosts on Debian 12 (default: trixie, Debian 13)
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      ?= .venv
PY        := $(VENV)/bin/python
# The Go toolchain (scripts/host-deps.sh checks there is one): on PATH, else Debian's golang-go, else /usr/local/go.
GO        ?= $(shell command -v go || echo /usr/local/go/bin/go)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export DOCKER_HOST ?= unix:///var/run/docker.sock
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
LOCAL_INV := inventories/local/hosts.yml
# The release of the local hosts (make up, make bench): trixie (Debian 13, the default since its molecule run is
# green) or bookworm (Debian 12: make up RTSTACK_DEBIAN_RELEASE=bookworm). The molecule scenarios name their
# images themselves and use both.
export RTSTACK_DEBIAN_RELEASE ?= trixie
export RTSTACK_IMAGE := rtstack/debian$(if $(filter bookworm,$(RTSTACK_DEBIAN_RELEASE)),12,13)-systemd:latest

.PHONY: help deps venv docker image images artifacts node-client loadgen up down lint test-app test-bad-input test-plugins test-unit molecule molecule-default molecule-ha test test-bench bench bench-knobs

help:
	@sed -n 's/^#   //p' Makefile

deps:  ## Debian packages the controller needs (Docker engine, debootstrap, Chromium)
	scripts/host-deps.sh

$(VENV)/.installed: requirements-dev.txt app/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

docker:
	scripts/docker-engine.sh

image: docker
	scripts/build-image.sh $(RTSTACK_DEBIAN_RELEASE) $(RTSTACK_IMAGE)

# Both releases' images, for the molecule scenarios.
images: docker
	scripts/build-image.sh bookworm
	scripts/build-image.sh trixie

artifacts: venv
	scripts/build-artifacts.sh $(PY)

# centrifuge-js under Node for the verify tests and the transports benchmark (rtclient/node.py),
# exactly as rtclient/js/package-lock.json pins it.
NODE_CLIENT := rtclient/js/node_modules/.package-lock.json
$(NODE_CLIENT): rtclient/js/package-lock.json
	cd rtclient/js && npm ci --ignore-scripts --no-audit --no-fund
	touch $@

node-client: $(NODE_CLIENT)

up: deps venv image artifacts
	@start=$$(date +%s); \
	ansible-playbook -i $(LOCAL_INV) playbooks/local_hosts.yml && \
	ansible-playbook -i $(LOCAL_INV) playbooks/site.yml && \
	echo "make up: done in $$(( $$(date +%s) - start )) s" && \
	echo "Chat: https://127.0.0.1:8443/  (test CA: inventories/local/credentials/tls/ca.crt;" && \
	echo "      users alice, bob, admin; passwords in inventories/local/credentials/user_*)"

down: venv docker
	ansible-playbook -i $(LOCAL_INV) playbooks/local_hosts.yml -e local_hosts_state=absent
	rm -rf build/facts build/local

lint: venv
	yamllint -s .
	ansible-lint --profile production

RESULTS := $(CURDIR)/build/test-results

test-app: venv
	cd app && ../$(PY) -m pytest -q -p no:cacheprovider --junitxml=$(RESULTS)/app.xml

# Each case is its own ansible-playbook run in its own directory: one per core at a time (pytest-xdist).
test-bad-input: venv artifacts
	$(PY) -m pytest -q -p no:cacheprovider -n auto --junitxml=$(RESULTS)/bad-input.xml tests/bad_input tests/test_argument_specs.py

# The report's arithmetic, and the load generator's tally (go vet + go test of bench/loadgen).
test-bench: venv
	$(PY) -m pytest -q -p no:cacheprovider --junitxml=$(RESULTS)/bench.xml tests/test_bench_report.py
	cd bench/loadgen && $(GO) vet ./... && $(GO) test -count=1 ./...

# The benchmark's load generator (bench/loadgen, Go): pinned modules, every one checked against go.sum.
loadgen: build/loadgen
build/loadgen: bench/loadgen/*.go bench/loadgen/go.mod bench/loadgen/go.sum
	cd bench/loadgen && GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 $(GO) build -trimpath -o ../../build/loadgen .

# The topology, filter and secrets plugins, the client library's manifest reader, gap fill, credentials
# and playbook-output readers, the generated role docs, the Centrifugo watchdog's helpers, the Prometheus
# alert rules (promtool, from make deps), the Grafana dashboards.
test-plugins: venv
	$(PY) -m pytest -q -p no:cacheprovider --junitxml=$(RESULTS)/plugins.xml \
	  tests/test_plugins.py tests/test_secrets_plugin.py tests/test_rtclient_manifest.py \
	  tests/test_rtclient_history.py tests/test_rtclient_auth.py tests/test_rtclient_playbook.py \
	  tests/test_rtclient_centrifugo.py \
	  tests/test_role_docs.py tests/test_watchdog.py tests/test_alert_rules.py tests/test_dashboards.py

test-unit: lint test-app test-bad-input test-bench test-plugins

molecule: molecule-default molecule-ha

# The whole stack on 5 hosts: converge, idempotence, day-2 operations, verify.
molecule-default: deps venv images artifacts node-client
	molecule test -s default

# Scaled out (3 Centrifugo nodes, Redis Sentinel, 2 Django hosts, PostgreSQL) with failure drills
# under load as its side_effect step.
molecule-ha: deps venv images artifacts node-client
	molecule test -s ha

test: test-unit molecule

# RTSTACK_BENCH=1: the local inventory exempts the controller from nginx's per-address limits.
# BENCH_ARGS passes options to the load tool, e.g. BENCH_ARGS="--skip-deploy --subscribers 500".
bench: deps venv image artifacts loadgen
	RTSTACK_BENCH=1 $(PY) -m bench $(BENCH_ARGS)

# One server setting at a time, before and after, on the stack `RTSTACK_BENCH=1 make up` deployed (~25 min).
bench-knobs: venv loadgen
	RTSTACK_BENCH=1 $(PY) -m bench.knobs $(BENCH_ARGS)
