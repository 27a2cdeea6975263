# otelcol-apm: every command a person runs is a target here; the README quotes these targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

OCB_VERSION     := v0.152.0
MDATAGEN_DIRS   := processor/routelatencyprocessor processor/routelatencyprocessor/routelatencyconnector \
                   extension/checkedfilestorage extension/softmemorylimit
COMPONENT_DIR   := processor/routelatencyprocessor
BIN             := bin/otelcol-apm
SHOPAPI         := bin/shopapi
JAEGER_VERSION  := v1.76.0
JAEGER          := .cache/bin/jaeger-$(JAEGER_VERSION)
TOOLS_BIN       := $(CURDIR)/.tools
BUILDER         := $(TOOLS_BIN)/builder
GENERATED       := main.go main_others.go main_windows.go components.go go.mod go.sum

# The checksum database lacks some DataDog and contrib modules (../shared/TOOLCHAIN.md); go.sum pins them instead.
export GONOSUMDB  := github.com/DataDog,github.com/open-telemetry/opentelemetry-collector-contrib
export GOTOOLCHAIN := local
export CGO_ENABLED := 0

.PHONY: help check-leftovers slo-rules slo-check generate check-generated mdatagen build run test unit bench-guard validate manifests image-test screenshots capacity e2e faults faults-fast soak browser fuzz bench bench-smoke bench-component bench-compare jaeger demo image openapi-testdata clean

# What the tests need from Debian comes from Debian, inside the targets (CI installs nothing by hand):
# $(call debian,CMD) installs the package of the same name when CMD is missing.
debian-install = { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1); }
debian = command -v $(1) >/dev/null || $(call debian-install,$(1))

# The local Jaeger of `make jaeger` and `make screenshots`: OTLP/gRPC on :14317, query API on :16686.
JAEGER_ENV := JAEGER_OTLP_GRPC_ENDPOINT=localhost:14317 JAEGER_QUERY_ENDPOINT=localhost:16686 \
	JAEGER_QUERY_GRPC_ENDPOINT=localhost:16685

help:
	@echo "make run     build bin/otelcol-apm and run it with config.yaml"
	@echo "make test    everything the project tests (what CI runs)"
	@echo "make build | generate | check-generated | unit | fuzz | validate | manifests | e2e | image-test | faults | check-leftovers"
	@echo "make browser | bench-smoke | bench | bench-component | capacity | soak | jaeger | demo | screenshots | image"
	@echo "make openapi-testdata | clean"

$(BUILDER):
	GOBIN=$(TOOLS_BIN) go install go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION)

## generate: regenerate main*.go, components.go, go.mod and go.sum from builder-config.yaml, and the component's
## mdatagen sources from its metadata.yaml files.
generate: $(BUILDER)
	scripts/generate-distribution.sh "$(BUILDER)" .
	$(MAKE) mdatagen

mdatagen:
	for d in $(MDATAGEN_DIRS); do (cd tools && go tool mdatagen ../$$d/metadata.yaml); done

## check-generated: fails when the committed sources differ from a fresh generation.
check-generated: $(BUILDER)
	scripts/check-generated.sh "$(BUILDER)" $(GENERATED)

build: $(BIN)

# Every file of our modules counts: the dashboard's page and script are embedded in the binary.
$(BIN): builder-config.yaml $(GENERATED) $(shell find $(COMPONENT_DIR) extension -type f -not -path '*/testdata/*')
	go build -trimpath -ldflags "-s -w" -o $(BIN) .

run: $(BIN)
	$(BIN) --config config.yaml

## test: what CI runs, fastest first.
test: check-generated unit slo-check bench-guard fuzz build validate manifests bench-smoke e2e image-test faults-fast capacity-smoke browser
	$(MAKE) check-leftovers

## check-leftovers: fails when a process the tests start, or a listener on the test ports, is still there.
check-leftovers:
	scripts/check-leftovers.sh

unit:
	cd $(COMPONENT_DIR) && go vet ./... && CGO_ENABLED=1 go test -race -count=1 ./...
	cd extension/checkedfilestorage && go vet ./... && CGO_ENABLED=1 go test -race -count=1 ./...
	cd extension/softmemorylimit && go vet ./... && CGO_ENABLED=1 go test -race -count=1 ./...

BENCH := bin/bench
TELEMETRYGEN := $(TOOLS_BIN)/telemetrygen

$(BENCH): $(shell find bench -name '*.go' -o -name go.mod)
	cd bench && go build -trimpath -o ../$(BENCH) ./cmd/bench

## bench: variants A (plain), B (span_metrics), C (routelatency) side by side; writes bench/RESULTS.md and
## bench/cpu.png, then appends what the route breakdown costs per span and holds at 100k spans/s (about 14 minutes).
## The driver runs on core 1, the collector pinned to core 0.
bench: $(BIN) $(BENCH) $(TELEMETRYGEN)
	taskset -c 1 $(BENCH) -collector $(BIN) -telemetrygen $(TELEMETRYGEN)
	scripts/bench-breakdown.sh $(COMPONENT_DIR) bench/RESULTS.md

# The outside check's load generator; v0.152.0 is not served by the module proxy, v0.161.0 is.
$(TELEMETRYGEN):
	GOBIN=$(TOOLS_BIN) go install github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@v0.161.0

## bench-smoke: each variant for 3 s at 5k spans/s; fails if a variant loses an acknowledged span.
bench-smoke: $(BIN) $(BENCH)
	$(BENCH) -smoke -collector $(BIN)

## fuzz: a short, bounded fuzz run of the route resolver and the connector's consume path (FUZZTIME each).
FUZZTIME ?= 10s
fuzz:
	cd $(COMPONENT_DIR) && go test -run '^$$' -fuzz '^FuzzResolve$$' -fuzztime $(FUZZTIME) ./internal/route/
	cd $(COMPONENT_DIR) && go test -run '^$$' -fuzz '^FuzzConsumeTraces$$' -fuzztime $(FUZZTIME) ./routelatencyconnector/

## bench-guard: the component's benchmarks against budgets of twice their documented cost (fails on a real
## regression, not on noise); part of make test.
bench-guard:
	cd $(COMPONENT_DIR) && ROUTELATENCY_COST_BUDGET=1 go test -count=1 -run '^TestCostBudget$$' -v ./routelatencyconnector/ | grep -E '^(---|ok|FAIL)|budget'

## bench-compare: the component's benchmarks at BASE (a git revision) and now, back to back, ROUNDS times.
BASE ?= HEAD
ROUNDS ?= 5
bench-compare:
	scripts/bench-compare.sh $(BASE) $(ROUNDS)

## bench-component: the processor's and connector's Go benchmarks (ns/span, allocs) on the realistic span mix,
## then how each scales from one core to two (median and range of 8 paired rounds).
bench-component:
	cd $(COMPONENT_DIR) && go test -run '^$$' -bench . -benchmem -count 5 -cpu 1,2 ./ ./routelatencyconnector/ ./internal/utf8check/
	scripts/bench-cores.sh $(COMPONENT_DIR)

## validate: every shipped configuration, with dummy values for the variables it needs.
validate: $(BIN)
	OTELCOL_APM_BIN=$(CURDIR)/$(BIN) go test -count=1 -run TestShippedConfigs ./e2e/...

# The service level objectives of environments/slos.yaml, and what slo-rules writes from them.
SLO_RULES := bin/slo-rules
SLO_ARGS  := -config config.yaml -config environments/slos.yaml \
	-prometheus deploy/prometheus/slo-rules.yaml -datadog deploy/datadog/slos.json

$(SLO_RULES): $(shell find $(COMPONENT_DIR) -name '*.go' -not -name '*_test.go')
	cd $(COMPONENT_DIR) && go build -trimpath -o $(CURDIR)/$(SLO_RULES) ./cmd/slo-rules

## slo-rules: writes the Prometheus rules (deploy/prometheus/slo-rules.yaml) and the Datadog SLOs and monitors
## (deploy/datadog/slos.json) from the objectives in environments/slos.yaml.
slo-rules: $(SLO_RULES)
	$(SLO_RULES) $(SLO_ARGS)

## slo-check: the checked-in rules and definitions are what the objectives give; promtool checks the rules and runs
## their unit tests (deploy/prometheus/slo-rules.test.yaml); the Datadog JSON decodes strictly with Datadog's types.
slo-check: $(SLO_RULES)
	command -v promtool >/dev/null || $(call debian-install,prometheus)
	$(SLO_RULES) $(SLO_ARGS) -check
	promtool check rules deploy/prometheus/slo-rules.yaml
	promtool test rules deploy/prometheus/slo-rules.test.yaml
	go test -count=1 ./deploy/datadog/

## manifests: kustomize builds deploy/kubernetes and every resource decodes strictly into its Kubernetes API type;
## containers set every variable their configurations require.
manifests:
	cd deploy/kubernetes && go vet ./... && go test -count=1 ./...

## e2e: real collector, real Jaeger, the Datadog intake, a real Prometheus and Alertmanager (Debian's packages,
## installed when missing) and the example service, all on loopback.
e2e: $(BIN) $(SHOPAPI) $(JAEGER)
	$(call debian,prometheus)
	$(call debian,prometheus-alertmanager)
	OTELCOL_APM_BIN=$(CURDIR)/$(BIN) JAEGER_BIN=$(CURDIR)/$(JAEGER) SHOPAPI_BIN=$(CURDIR)/$(SHOPAPI) \
		go test -count=1 -timeout 20m ./e2e/ ./e2e/ddintake/ ./e2e/harness/

## faults: the hardened gateway under kill -9, a 60 s backend outage (Jaeger, Datadog, New Relic), 60 s of 10x overload, bad input, wrong
## credentials, a search for its secrets, kill -9 with tail sampling, a sampling burst, a corrupted queue file, a full
## disk, and a fleet (load balancer + 3 replicas, one killed) scraped by a real Prometheus (about 9 minutes); prints
## each scenario's FIGURES (docs/reliability.md, docs/scaling.md).
FAULTS_RUN ?= TestFault
faults: $(BIN) $(SHOPAPI)
	@mkdir -p .cache
	$(call debian,prometheus)
	OTELCOL_APM_BIN=$(CURDIR)/$(BIN) SHOPAPI_BIN=$(CURDIR)/$(SHOPAPI) SOAK_DURATION=$(SOAK_DURATION) go test -count=1 -timeout 20m -v -run '$(FAULTS_RUN)' ./e2e/faults/ 2>&1 \
		| tee .cache/faults.log | grep -aE '^(FIGURES|--- |ok|FAIL|panic)|_test.go:[0-9]+: [^F]' \
		|| { echo "make faults failed; the whole output (collector logs included) is in .cache/faults.log"; exit 1; }

## soak: the hardened gateway for SOAK_DURATION (30m) under steady traffic with route and service churn; fails if
## memory, goroutines, open files, series, routes or the queue grow over the last half; writes docs/soak.svg and
## docs/soak.csv (not in make test, which runs a 60 s variant in faults-fast).
SOAK_DURATION ?= 30m
soak: $(BIN)
	OTELCOL_APM_BIN=$(CURDIR)/$(BIN) SOAK_DURATION=$(SOAK_DURATION) SOAK_OUT=$(CURDIR)/docs \
		go test -count=1 -timeout 0 -v -run '^TestSoak$$' ./e2e/faults/ 2>&1 | grep -aE '^(FIGURES|--- |ok|FAIL|panic)|_test.go:[0-9]+: [^F]'

## capacity: spans per CPU second of the shipped production, gateway and load balancer configurations, flat out on
## this machine, in paired rounds against each without the routelatency component, at 1, 10, 100 and 1,000 spans
## per request, every acknowledged span checked delivered (docs/scaling.md; about 20 minutes; narrow it with
## CAPACITY_SETUPS=gateway CAPACITY_SIZES=100 CAPACITY_ROUNDS=3 CAPACITY_SECONDS=10; CAPACITY_PROFILE_DIR=dir for CPU
## profiles).
capacity: $(BIN)
	OTELCOL_APM_BIN=$(CURDIR)/$(BIN) CAPACITY=1 go test -count=1 -timeout 120m -v -run '^TestCapacity$$' ./e2e/faults/ 2>&1 | grep -aE '^(FIGURES|\||--- |ok|FAIL)'

## capacity-smoke: one paired round of the gateway at 100 spans per request, 3 s each: make capacity's harness end to
## end (both variants start, every acknowledged span is delivered), part of make test (about 30 s).
capacity-smoke: $(BIN)
	$(MAKE) capacity CAPACITY_SETUPS=gateway CAPACITY_SIZES=100 CAPACITY_ROUNDS=1 CAPACITY_SECONDS=3

## faults-fast: scenarios 4-6 (bad input, auth, secrets), 9 (corrupted queue), 11 (fleet) and a 60 s soak, part of
## make test (about 3 minutes).
faults-fast:
	$(MAKE) faults FAULTS_RUN='TestFault([456]|9|11)|TestSoak' SOAK_DURATION=60s


## browser: the route dashboard driven in headless Chromium (installed from Debian when missing); screenshots in
## SCREENSHOT_DIR (default: a temporary folder).
browser: $(BIN)
	$(call debian,chromium)
	cd e2e/browser && OTELCOL_APM_BIN=$(CURDIR)/$(BIN) go test -count=1 -timeout 5m -v ./... 2>&1 | grep -v '^=== RUN'

$(SHOPAPI): $(shell find examples -name '*.go' -o -name go.mod)
	cd examples && go build -trimpath -o ../$(SHOPAPI) ./shopapi

# Built once per machine into the ignored .cache folder.
$(JAEGER):
	scripts/build-jaeger.sh $(JAEGER_VERSION) $(JAEGER)

## jaeger: a local Jaeger v2 (in-memory) for development.yaml: OTLP/gRPC on localhost:14317, query API on :16686.
jaeger: $(JAEGER)
	$(JAEGER_ENV) $(JAEGER) --config e2e/testdata/jaeger.yaml

## demo: otelcol-apm with its route dashboard on http://localhost:8890/, two example services with realistic
## latencies and a steady request mix for DEMO_DURATION (10m); with `make jaeger` running, spans go to Jaeger.
demo: $(BIN) $(SHOPAPI) bin/trafficmix
	@mkdir -p .cache
	scripts/demo.sh

## screenshots: a Jaeger and the demo for a minute, then the overview and a route page in Chromium, written to
## docs/ for the README (about 2 minutes).
screenshots: $(BIN) $(SHOPAPI) bin/trafficmix $(JAEGER)
	@mkdir -p .cache
	$(call debian,chromium)
	$(JAEGER_ENV) $(JAEGER) --config e2e/testdata/jaeger.yaml >.cache/demo-jaeger.log 2>&1 & jaeger=$$!; \
	for i in $$(seq 1 100); do curl -sf -o /dev/null localhost:16686/api/services && break; sleep 0.2; done; \
	DEMO_DURATION=100s scripts/demo.sh & demo=$$!; trap "kill -INT $$demo 2>/dev/null; wait $$demo; kill $$jaeger" EXIT; sleep 75; \
		cd e2e/browser && SCREENSHOT_DEMO=http://localhost:8890 SCREENSHOT_DIR=$(CURDIR)/docs go test -count=1 -run '^TestScreenshots$$' -v ./... | grep -E '^(---|ok|FAIL)|screenshot' 

bin/trafficmix: $(shell find examples -name '*.go' -o -name go.mod)
	cd examples && go build -trimpath -o ../bin/trafficmix ./trafficmix

## image: the container image (needs buildah, or docker on a machine that has an engine).
image: $(BIN)
	$(call debian,buildah)
	mkdir -p bin/image-data && cp /etc/ssl/certs/ca-certificates.crt bin/ca-certificates.crt
	buildah --storage-driver vfs bud --isolation chroot -t otelcol-apm:$$($(BIN) --version | cut -d' ' -f3) .

## image-test: builds the image and runs it (buildah, installed from Debian when missing): components, refusal of
## an untokened dashboard on all interfaces, health, route metrics and dashboard reachable, the load balancer overlay.
image-test: image
	OTELCOL_APM_IMAGE=localhost/otelcol-apm:$$($(BIN) --version | cut -d' ' -f3) go test -count=1 -v -run '^TestImage$$' ./e2e/ 2>&1 | grep -v '^=== RUN'

## openapi-testdata: the OpenAPI document FastAPI serves for examples/fastapi/shop.py (Debian's python3-fastapi,
## installed when missing), written where the route tests read it.
OPENAPI_TESTDATA := $(COMPONENT_DIR)/internal/route/testdata/fastapi-shop-openapi.json
openapi-testdata:
	/usr/bin/python3 -c 'import fastapi' 2>/dev/null || $(call debian-install,python3-fastapi)
	/usr/bin/python3 examples/fastapi/shop.py > $(OPENAPI_TESTDATA)

clean:
	rm -rf bin .tools
