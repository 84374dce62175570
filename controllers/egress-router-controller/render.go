package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	v1 "github.com/egress-router/egress-router/api/v1"
	"github.com/egress-router/egress-router/internal/render"
)

// renderCommand prints, as YAML documents, the objects the controller would apply for
// each EgressRouter in the file: the same rendering code, offline. The objects carry
// no owner references (the router has no UID yet).
func renderCommand(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("egress-router-controller render", flag.ContinueOnError)
	file := fs.String("f", "", "`file` of EgressRouters (YAML or JSON, several documents allowed; - for stdin)")
	images := imageFlags(fs)
	if code := parse(fs, args, stderr); code >= 0 {
		return code
	}
	if *file == "" {
		fmt.Fprintln(stderr, "render: -f FILE is required")
		return 2
	}
	in := stdin
	if *file != "-" {
		f, err := os.Open(*file)
		if err != nil {
			fmt.Fprintln(stderr, "render:", err)
			return 1
		}
		defer f.Close()
		in = f
	}
	out, err := renderAll(in, *file, *images)
	if err != nil {
		fmt.Fprintln(stderr, "render:", err)
		return 1
	}
	stdout.Write(out)
	return 0
}

// renderAll renders every EgressRouter of the stream; nothing is printed unless all
// of them render.
func renderAll(in io.Reader, name string, images render.Images) ([]byte, error) {
	var out bytes.Buffer
	reader := utilyaml.NewYAMLReader(bufio.NewReader(in))
	for doc := 1; ; doc++ {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, doc, err)
		}
		var probe map[string]any
		if err := yaml.Unmarshal(raw, &probe); err == nil && len(probe) == 0 {
			continue // only blank lines or comments
		}
		var router v1.EgressRouter
		// Strict: a misspelt field would be pruned by the API server, silently.
		if err := yaml.UnmarshalStrict(raw, &router); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, doc, err)
		}
		if router.APIVersion != v1.GroupVersion.String() || router.Kind != "EgressRouter" {
			return nil, fmt.Errorf("%s: document %d: apiVersion %q kind %q, want %s EgressRouter", name, doc, router.APIVersion, router.Kind, v1.GroupVersion)
		}
		objects, err := render.Render(&router, images)
		if err != nil {
			return nil, fmt.Errorf("%s: EgressRouter %s: %w", name, router.Name, err)
		}
		for _, o := range objects.InOrder() {
			y, err := yaml.Marshal(o.Object)
			if err != nil {
				return nil, err
			}
			out.WriteString("---\n")
			out.Write(y)
		}
	}
	if out.Len() == 0 {
		return nil, fmt.Errorf("%s holds no EgressRouter", name)
	}
	return out.Bytes(), nil
}
