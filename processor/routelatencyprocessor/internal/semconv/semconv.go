// Package semconv holds every attribute key the component reads or writes, in one place: the OpenTelemetry semantic
// conventions' current keys, the legacy ones older instrumentations still send, and the component's own.
package semconv // import "github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/semconv"

// Resource attributes.
const (
	ServiceName = "service.name"
	// DeploymentEnvironmentName is the current key; DeploymentEnvironment the pre-1.27 one, still set by many SDKs.
	DeploymentEnvironmentName = "deployment.environment.name"
	DeploymentEnvironment     = "deployment.environment"
	// ServiceInstanceID is read from the collector's own resource.
	ServiceInstanceID = "service.instance.id"
	ServiceVersion    = "service.version"
	// CollectorInstanceID is the data point attribute that carries it on route series (as contrib's spanmetrics).
	CollectorInstanceID = "collector.instance.id"
)

// HTTP server span attributes, current and legacy.
const (
	HTTPRoute               = "http.route"
	HTTPRequestMethod       = "http.request.method"
	HTTPMethodLegacy        = "http.method"
	HTTPResponseStatusCode  = "http.response.status_code"
	HTTPStatusCodeLegacy    = "http.status_code"
	URLPath                 = "url.path"
	HTTPTargetLegacy        = "http.target"
	URLFull                 = "url.full"
	HTTPURLLegacy           = "http.url"
	HTTPResponseStatusClass = "http.response.status_class" // the component's own: "5xx"
	MetricOverflow          = "otel.metric.overflow"       // the SDKs' mark of a cardinality-limit series
	ErrorType               = "error.type"
)

// The component's own span attributes.
const (
	// HTTPRouteGuessed marks an http.route that the routelatency processor guessed from a raw path.
	HTTPRouteGuessed = "http.route.guessed"
	// HTTPRouteUnmatched marks a request that matched no route of its service (a 404 or 405 without http.route):
	// the processor writes this instead of an http.route the application never set.
	HTTPRouteUnmatched = "http.route.unmatched"
	// HTTPRouteSlow is the default attribute set on requests slower than their route's threshold.
	HTTPRouteSlow = "http.route.slow"
)
