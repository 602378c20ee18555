// Command composecheck loads deploy/docker-compose.yml with compose-go, the
// loader `docker compose` itself is built on (the compose-spec JSON schema,
// interpolation, merge keys, normalisation, consistency checks), then checks
// the topology deploy/README.md describes and prints each broker's resolved
// settings for deploy/check.sh's smoke test:
//
//	composecheck FILE
//
// prints, brokers by node.id,
//
//	broker SERVICE HOSTNAME
//	env SERVICE KEY=VALUE
//	mount SERVICE SOURCE TARGET
//	proxy SERVICE HAPROXY_CFG
//
// and exits 1 with one line per problem when the file does not load or the
// topology is not the promised one.
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

const (
	dataDir        = "/var/lib/fjord"
	haproxyCfgPath = "/usr/local/etc/haproxy/haproxy.cfg"
	// docker-entrypoint.sh's default FJORD_EXTERNAL_BASE_PORT.
	externalBasePort = 8443
)

// broker is one service that runs docker-entrypoint.sh with a node id.
type broker struct {
	svc    types.ServiceConfig
	nodeID int
	env    map[string]string
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: composecheck docker-compose.yml")
		os.Exit(2)
	}
	file := os.Args[1]
	opts, err := cli.NewProjectOptions([]string{file}, cli.WithWorkingDirectory(filepath.Dir(file)), cli.WithOsEnv)
	if err != nil {
		fail(err.Error())
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		fail(err.Error())
	}
	brokers, problems := brokersOf(project)
	proxy, cfg, more := proxyOf(project)
	problems = append(problems, more...)
	if cfg != "" {
		problems = append(problems, checkRoutes(brokers, proxy, cfg)...)
	}
	if len(problems) > 0 {
		fail(problems...)
	}
	for _, b := range brokers {
		fmt.Printf("broker %s %s\n", b.svc.Name, b.svc.Hostname)
		for _, k := range sortedKeys(b.env) {
			fmt.Printf("env %s %s=%s\n", b.svc.Name, k, b.env[k])
		}
		for _, v := range b.svc.Volumes {
			fmt.Printf("mount %s %s %s\n", b.svc.Name, v.Source, v.Target)
		}
	}
	fmt.Printf("proxy %s %s\n", proxy.Name, cfg)
}

func fail(problems ...string) {
	for _, p := range problems {
		fmt.Fprintln(os.Stderr, "composecheck: "+p)
	}
	os.Exit(1)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// brokersOf finds the services with FJORD_NODE_ID and checks that they are
// nodes 1..3, each in its own rack, reachable by its service name, with its
// own named data volume, the config template and a healthcheck.
func brokersOf(p *types.Project) ([]broker, []string) {
	var brokers []broker
	var problems []string
	racks := map[string]string{}
	names := make([]string, 0, len(p.Services))
	for name := range p.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		svc := p.Services[name]
		env := map[string]string{}
		for k, v := range svc.Environment {
			if v != nil {
				env[k] = *v
			}
		}
		idText, ok := env["FJORD_NODE_ID"]
		if !ok {
			continue
		}
		id, err := strconv.Atoi(idText)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: FJORD_NODE_ID %q is not a number", svc.Name, idText))
			continue
		}
		brokers = append(brokers, broker{svc: svc, nodeID: id, env: env})
		bad := func(format string, a ...any) {
			problems = append(problems, svc.Name+": "+fmt.Sprintf(format, a...))
		}
		if svc.Hostname != svc.Name {
			bad("hostname %q is not the service name (INTERNAL advertises the host name)", svc.Hostname)
		}
		if rack := env["FJORD_RACK"]; rack == "" {
			bad("no FJORD_RACK")
		} else if other, dup := racks[rack]; dup {
			bad("rack %s is %s's too", rack, other)
		} else {
			racks[rack] = svc.Name
		}
		if svc.HealthCheck == nil || len(svc.HealthCheck.Test) == 0 {
			bad("no healthcheck")
		}
		if svc.Build == nil {
			bad("no build section")
		} else if _, err := os.Stat(filepath.Join(svc.Build.Context, svc.Build.Dockerfile)); err != nil {
			bad("build: %v", err)
		}
		var data, config bool
		for _, v := range svc.Volumes {
			switch v.Target {
			case dataDir:
				data = v.Type == types.VolumeTypeVolume && p.Volumes[v.Source].Name != ""
			case env["FJORD_CONFIG"]:
				_, err := os.Stat(v.Source)
				config = v.Type == types.VolumeTypeBind && v.ReadOnly && err == nil
			}
		}
		if !data {
			bad("no named volume declared under volumes: at %s", dataDir)
		}
		if !config {
			bad("FJORD_CONFIG %q is not a read-only bind mount of a file that exists", env["FJORD_CONFIG"])
		}
	}
	sort.Slice(brokers, func(i, j int) bool { return brokers[i].nodeID < brokers[j].nodeID })
	for i, b := range brokers {
		if b.nodeID != i+1 {
			problems = append(problems, fmt.Sprintf("node ids are not 1..%d: %s is %d", len(brokers), b.svc.Name, b.nodeID))
		}
	}
	if len(brokers) != 3 {
		problems = append(problems, fmt.Sprintf("%d brokers, not 3", len(brokers)))
	}
	volumes := map[string]string{}
	for _, b := range brokers {
		for _, v := range b.svc.Volumes {
			if v.Target != dataDir {
				continue
			}
			if other, dup := volumes[v.Source]; dup {
				problems = append(problems, fmt.Sprintf("%s and %s share the data volume %s", other, b.svc.Name, v.Source))
			}
			volumes[v.Source] = b.svc.Name
		}
	}
	return brokers, problems
}

// proxyOf finds the one service with an haproxy.cfg mounted.
func proxyOf(p *types.Project) (types.ServiceConfig, string, []string) {
	for _, svc := range p.Services {
		for _, v := range svc.Volumes {
			if v.Target == haproxyCfgPath {
				return svc, v.Source, nil
			}
		}
	}
	return types.ServiceConfig{}, "", []string{"no service mounts an haproxy config at " + haproxyCfgPath}
}

// checkRoutes checks that the proxy publishes broker N's external port
// (docker-entrypoint.sh: FJORD_EXTERNAL_PORT, else 8443 + N - 1) and that
// haproxy forwards it to that broker's EXTERNAL listener.
func checkRoutes(brokers []broker, proxy types.ServiceConfig, cfg string) []string {
	var problems []string
	routes, err := haproxyRoutes(cfg)
	if err != nil {
		return []string{err.Error()}
	}
	published := map[string]bool{}
	for _, p := range proxy.Ports {
		if strconv.Itoa(int(p.Target)) == p.Published {
			published[p.Published] = true
		}
	}
	for _, b := range brokers {
		port := b.env["FJORD_EXTERNAL_PORT"]
		if port == "" {
			port = strconv.Itoa(externalBasePort + b.nodeID - 1)
		}
		external, err := externalListenerPort(b)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		want := b.svc.Name + ":" + external
		if got := routes[port]; got != want {
			problems = append(problems, fmt.Sprintf("%s: haproxy forwards port %s to %q, not to its EXTERNAL listener %s", b.svc.Name, port, got, want))
		}
		if !published[port] {
			problems = append(problems, fmt.Sprintf("%s: %s does not publish port %s as %s", b.svc.Name, proxy.Name, port, port))
		}
	}
	return problems
}

// haproxyRoutes reads `frontend`/`bind :PORT`/`default_backend` and
// `backend`/`server NAME HOST:PORT` into frontend port -> HOST:PORT.
func haproxyRoutes(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	binds, backends, servers := map[string]string{}, map[string]string{}, map[string]string{}
	var section, name string
	s := bufio.NewScanner(f)
	for s.Scan() {
		w := strings.Fields(s.Text())
		if len(w) == 0 || strings.HasPrefix(w[0], "#") {
			continue
		}
		switch {
		case len(w) >= 2 && (w[0] == "frontend" || w[0] == "backend"):
			section, name = w[0], w[1]
		case section == "frontend" && w[0] == "bind" && len(w) >= 2:
			binds[name] = w[1][strings.LastIndex(w[1], ":")+1:]
		case section == "frontend" && w[0] == "default_backend" && len(w) >= 2:
			backends[name] = w[1]
		case section == "backend" && w[0] == "server" && len(w) >= 3:
			servers[name] = w[2]
		}
	}
	routes := map[string]string{}
	for frontend, port := range binds {
		routes[port] = servers[backends[frontend]]
	}
	return routes, s.Err()
}

// externalListenerPort reads the EXTERNAL listener's port from the broker's
// config template (its `listeners` line).
func externalListenerPort(b broker) (string, error) {
	var source string
	for _, v := range b.svc.Volumes {
		if v.Target == b.env["FJORD_CONFIG"] {
			source = v.Source
		}
	}
	text, err := os.ReadFile(source)
	if err != nil {
		return "", fmt.Errorf("%s: %v", b.svc.Name, err)
	}
	for _, line := range strings.Split(string(text), "\n") {
		value, ok := strings.CutPrefix(strings.TrimSpace(line), "listeners=")
		if !ok {
			continue
		}
		for _, l := range strings.Split(value, ",") {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "EXTERNAL://"); ok {
				return rest[strings.LastIndex(rest, ":")+1:], nil
			}
		}
	}
	return "", fmt.Errorf("%s: no EXTERNAL listener in %s", b.svc.Name, source)
}
