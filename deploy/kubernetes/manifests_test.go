package kubernetes

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// build runs kustomize on this directory, as `kubectl apply -k deploy/kubernetes` does.
func build(t *testing.T) [][]byte {
	t.Helper()
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), ".")
	if err != nil {
		t.Fatalf("kustomize build: %v", err)
	}
	var docs [][]byte
	for _, r := range resMap.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, b)
	}
	return docs
}

// typed returns the Kubernetes API type of a resource's kind; a kind the manifests should not have fails.
func typed(apiVersion, kind string) (any, error) {
	switch apiVersion + " " + kind {
	case "v1 Namespace":
		return &corev1.Namespace{}, nil
	case "v1 Service":
		return &corev1.Service{}, nil
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}, nil
	case "apps/v1 StatefulSet":
		return &appsv1.StatefulSet{}, nil
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "rbac.authorization.k8s.io/v1 Role":
		return &rbacv1.Role{}, nil
	case "rbac.authorization.k8s.io/v1 RoleBinding":
		return &rbacv1.RoleBinding{}, nil
	}
	return nil, fmt.Errorf("unexpected kind %s %s", apiVersion, kind)
}

// TestManifestsDecodeStrictly: a misspelled field, a wrong type or an unknown kind fails here, not in a cluster.
func TestManifestsDecodeStrictly(t *testing.T) {
	docs := build(t)
	kinds := map[string]int{}
	for _, doc := range docs {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			t.Fatal(err)
		}
		obj, err := typed(head.APIVersion, head.Kind)
		if err != nil {
			t.Errorf("%s: %v", head.Metadata.Name, err)
			continue
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			t.Errorf("%s %s does not decode strictly: %v", head.Kind, head.Metadata.Name, err)
		}
		kinds[head.Kind]++
	}
	for _, want := range []string{"Deployment", "StatefulSet", "Service", "Role", "RoleBinding", "ServiceAccount"} {
		if kinds[want] == 0 {
			t.Errorf("no %s in the manifests (have %v)", want, kinds)
		}
	}
}

// TestStrictDecodingCatchesATypo proves the check above can fail: one field misspelled.
func TestStrictDecodingCatchesATypo(t *testing.T) {
	for _, doc := range build(t) {
		if !bytes.Contains(doc, []byte("kind: StatefulSet")) {
			continue
		}
		broken := bytes.Replace(doc, []byte("readinessProbe:"), []byte("readinesProbe:"), 1)
		if bytes.Equal(broken, doc) {
			t.Fatal("the StatefulSet has no readinessProbe to misspell")
		}
		if err := yaml.UnmarshalStrict(broken, &appsv1.StatefulSet{}); err == nil || !strings.Contains(err.Error(), "readinesProbe") {
			t.Fatalf("a misspelled field decoded without an error naming it: %v", err)
		}
		return
	}
	t.Fatal("no StatefulSet")
}

var requiredEnv = regexp.MustCompile(`\$\{env:([A-Z0-9_]+)\}`)

// TestContainersGetWhatTheirConfigurationsNeed: every configuration file a container's arguments name exists in the
// image (config.yaml, environments/), every ${env:NAME} without a default in them is set by the container or the
// image, and the probes hit the health check port.
func TestContainersGetWhatTheirConfigurationsNeed(t *testing.T) {
	imageEnv := dockerfileEnv(t)
	checked := 0
	for _, doc := range build(t) {
		var spec corev1.PodSpec
		switch {
		case bytes.Contains(doc, []byte("kind: Deployment")):
			var d appsv1.Deployment
			if err := yaml.Unmarshal(doc, &d); err != nil {
				t.Fatal(err)
			}
			spec = d.Spec.Template.Spec
		case bytes.Contains(doc, []byte("kind: StatefulSet")):
			var s appsv1.StatefulSet
			if err := yaml.Unmarshal(doc, &s); err != nil {
				t.Fatal(err)
			}
			spec = s.Spec.Template.Spec
		default:
			continue
		}
		for _, c := range spec.Containers {
			have := slices.Clone(imageEnv)
			for _, e := range c.Env {
				have = append(have, e.Name)
			}
			for i, arg := range c.Args {
				if i == 0 || c.Args[i-1] != "--config" {
					continue
				}
				rel, ok := strings.CutPrefix(arg, "/etc/otelcol-apm/")
				if !ok {
					t.Errorf("%s: config %s is not one of the image's", c.Name, arg)
					continue
				}
				body, err := os.ReadFile(filepath.Join("..", "..", rel))
				if err != nil {
					t.Errorf("%s: config %s: %v", c.Name, arg, err)
					continue
				}
				for _, m := range requiredEnv.FindAllStringSubmatch(string(body), -1) {
					if !slices.Contains(have, m[1]) {
						t.Errorf("%s: %s needs %s, which neither the container nor the image sets", c.Name, rel, m[1])
					}
				}
				checked++
			}
			if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Port.String() != "health" {
				t.Errorf("%s: no readiness probe on the health check", c.Name)
			}
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("%s: no CPU request or memory limit", c.Name)
			}
			checkMemorySettings(t, c)
		}
	}
	if checked < 3 {
		t.Errorf("checked %d configuration files, want the gateway's two and the load balancer's", checked)
	}
}

// dockerfileEnv lists the variables the image sets (its ENV instruction).
func dockerfileEnv(t *testing.T) []string {
	body, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^\s*(?:ENV\s+)?([A-Z0-9_]+)=`).FindAllStringSubmatch(string(body), -1) {
		names = append(names, m[1])
	}
	return names
}

// checkMemorySettings: the Go runtime's soft limit (GOMEMLIMIT) under the memory_limiter's (MEMORY_LIMIT_MIB), so
// that the collector collects harder before it refuses data, and both under the container's limit, so that neither
// is reached only by the kernel's OOM killer. (GOGC above 100, where it is set, is only safe with that soft limit.)
func checkMemorySettings(t *testing.T, c corev1.Container) {
	t.Helper()
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	mib := func(name, v string, suffix string) float64 {
		var n float64
		if _, err := fmt.Sscanf(strings.TrimSuffix(v, suffix), "%g", &n); err != nil || !strings.HasSuffix(v, suffix) {
			t.Errorf("%s: %s=%q, want a number of MiB (as %q)", c.Name, name, v, "1400"+suffix)
		}
		return n
	}
	limiter := mib("MEMORY_LIMIT_MIB", env["MEMORY_LIMIT_MIB"], "")
	soft := mib("GOMEMLIMIT", env["GOMEMLIMIT"], "MiB")
	container := float64(c.Resources.Limits.Memory().Value()) / (1 << 20)
	if !(soft < limiter && limiter < container) {
		t.Errorf("%s: want GOMEMLIMIT (%g MiB) < MEMORY_LIMIT_MIB (%g) < the container's limit (%g MiB)", c.Name, soft, limiter, container)
	}
}
