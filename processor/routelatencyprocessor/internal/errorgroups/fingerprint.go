// Package errorgroups groups what fails per route: each exception a request's spans recorded (the OpenTelemetry
// `exception` span event), or an error status without one, belongs to a group keyed by route, exception type,
// the message with its variable parts normalized and the top frame of the stack trace that belongs to the
// application; `error.fingerprint` on the span overrides the key.
package errorgroups // import "github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/errorgroups"

import (
	"regexp"
	"strings"
)

// Sizes kept of what an exception carries, after masking: the groups keep an example of each.
const (
	MaxMessageLength    = 1024
	MaxStacktraceLength = 8 << 10
	// maxParsedStacktrace bounds the part of a stack trace read for its top frame (a 1 MiB trace costs no more).
	maxParsedStacktrace = 64 << 10
	maxTypeLength       = 256
)

// normalizers replace the variable parts of a message, in this order: quoted text, UUIDs, paths, then numbers and
// hexadecimal ids alike (a random hex id is sometimes all digits). What is left is the message's shape: "order 1234
// not found" and "order 98 not found" share one.
var normalizers = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`'[^']*'|"[^"]*"|` + "`[^`]*`"), "?"},
	{regexp.MustCompile(`(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`), "<uuid>"},
	{regexp.MustCompile(`(?:[A-Za-z]:\\|/)[\w.\-]+(?:[/\\][\w.\-]+)+`), "<path>"},
	// Hex ids: with a digit, or eight letters and more (a random id of letters only; few words are).
	{regexp.MustCompile(`(?i)\b0x[0-9a-f]+\b|\d+(?:\.\d+)+|\b[0-9a-f]*[0-9][0-9a-f]*\b|\b[a-f]{8,}\b|\d+`), "<n>"},
}

// Normalize returns a message's shape (valid UTF-8, bounded): what groups compare.
func Normalize(message string) string {
	m := Clean(message, MaxMessageLength)
	for _, n := range normalizers {
		m = n.re.ReplaceAllString(m, n.with)
	}
	return m
}

// Clean cuts s to at most n bytes and replaces what is not UTF-8 (a character cut in two included).
func Clean(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// TopFrame returns the innermost frame of a stack trace that belongs to the application, "" when none is found:
// Python tracebacks (innermost last; site-packages, dist-packages, the standard library and frozen modules are not
// the application's) and Go stack traces (innermost first, as debug.Stack and the Go SDK write them; the runtime,
// the standard library and OpenTelemetry's packages are not). A frame is its function and, for Python, its file's
// name: no line number, which moves with every edit.
func TopFrame(stacktrace string) string {
	if len(stacktrace) > maxParsedStacktrace {
		stacktrace = stacktrace[:maxParsedStacktrace]
	}
	if strings.Contains(stacktrace, "Traceback (most recent call last)") || strings.Contains(stacktrace, `  File "`) {
		return pythonTopFrame(stacktrace)
	}
	return goTopFrame(stacktrace)
}

var pythonFrame = regexp.MustCompile(`(?m)^\s*File "([^"]+)", line \d+, in (\S+)`)

func pythonTopFrame(st string) string {
	// A chained traceback ("During handling of the above exception...") prints the cause first: the last block
	// is the exception raised, and its last application frame the innermost.
	frames := pythonFrame.FindAllStringSubmatch(st, -1)
	for i := len(frames) - 1; i >= 0; i-- {
		file, fn := frames[i][1], frames[i][2]
		if pythonLibrary(file) {
			continue
		}
		base := file[strings.LastIndexAny(file, `/\`)+1:]
		return base + " in " + fn
	}
	return ""
}

var pythonStandardLibrary = regexp.MustCompile(`[/\\]lib[/\\]python\d`)

func pythonLibrary(file string) bool {
	return strings.Contains(file, "site-packages") || strings.Contains(file, "dist-packages") ||
		strings.HasPrefix(file, "<") || pythonStandardLibrary.MatchString(file)
}

func goTopFrame(st string) string {
	for _, line := range strings.Split(st, "\n") {
		if line == "" || line[0] == '\t' || line[0] == ' ' || strings.HasPrefix(line, "goroutine ") {
			continue
		}
		fn := line
		if i := strings.LastIndexByte(fn, '('); i > 0 {
			fn = fn[:i]
		}
		fn = strings.TrimPrefix(fn, "created by ")
		if goLibrary(fn) {
			continue
		}
		return fn
	}
	return ""
}

// goLibrary reports the runtime, the standard library (no dot in the import path's first element) and
// OpenTelemetry's instrumentation.
func goLibrary(fn string) bool {
	path := fn
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		first := path[:strings.IndexByte(path, '/')]
		if !strings.Contains(first, ".") {
			return true
		}
		path = path[i:]
	} else if !strings.HasPrefix(fn, "main.") {
		return true // runtime.gopanic, net/http's handlers, debug.Stack: no module path
	}
	return strings.HasPrefix(fn, "go.opentelemetry.io/")
}

// Masker replaces what matches its patterns (tokens, emails, card numbers) before anything is kept or shown.
type Masker struct{ patterns []*regexp.Regexp }

// NewMasker compiles the patterns (validated by the configuration).
func NewMasker(patterns []string) (*Masker, error) {
	m := &Masker{}
	for _, p := range patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, err
		}
		m.patterns = append(m.patterns, re)
	}
	return m, nil
}

// Mask returns s with every match replaced by "<masked>".
func (m *Masker) Mask(s string) string {
	for _, re := range m.patterns {
		s = re.ReplaceAllString(s, "<masked>")
	}
	return s
}
