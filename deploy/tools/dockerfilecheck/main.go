// Command dockerfilecheck checks deploy/Dockerfile without a Docker engine:
// BuildKit's own parser and instruction parser (flags such as
// RUN --mount, COPY --chmod/--from, and the lint rules BuildKit applies
// while parsing), then what the image promises, then the build context as
// .dockerignore leaves it, matched by moby/patternmatcher as BuildKit does.
//
//	dockerfilecheck -dockerfile deploy/Dockerfile -context . \
//	    -bin fjord -expose 9092,9093,9094,11001 -volume /var/lib/fjord \
//	    -require Cargo.toml,Cargo.lock,broker -exclude target,.git \
//	    [-export DIR]
//
// It checks that the last stage runs as a numeric non-root user (what
// Kubernetes' runAsNonRoot can verify), that its ENTRYPOINT is a script
// copied from the context, that the binary a build stage builds with
// `cargo build ... --bin BIN` is copied into the last stage, the EXPOSEd
// ports and VOLUMEs, and that every COPY source and every -require path is
// in the context while every -exclude path is not. -export copies the
// context there (for `cargo metadata --locked` on exactly what Docker would
// send). Prints one summary line; exits 1 with one line per problem.
package main

import (
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

var problems []string

func problem(format string, a ...any) {
	problems = append(problems, fmt.Sprintf(format, a...))
}

func list(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func main() {
	dockerfile := flag.String("dockerfile", "deploy/Dockerfile", "the Dockerfile")
	contextDir := flag.String("context", ".", "the build context")
	bin := flag.String("bin", "fjord", "the binary the image runs")
	expose := flag.String("expose", "", "ports the last stage must EXPOSE, comma-separated")
	volume := flag.String("volume", "", "VOLUMEs the last stage must declare, comma-separated")
	require := flag.String("require", "", "context paths that must be sent, comma-separated")
	exclude := flag.String("exclude", "", "context paths that must not be sent, comma-separated")
	export := flag.String("export", "", "copy the context into this directory")
	flag.Parse()

	stages := parse(*dockerfile)
	ctx := contextFiles(*contextDir)
	if len(stages) > 0 {
		checkImage(stages, ctx, *bin, list(*expose), list(*volume))
	}
	for _, p := range list(*require) {
		if !ctx.has(p) {
			problem(".dockerignore leaves %s out of the context", p)
		}
	}
	for _, p := range list(*exclude) {
		if ctx.has(p) {
			problem(".dockerignore sends %s in the context", p)
		}
	}
	if *export != "" && len(problems) == 0 {
		if err := ctx.copyTo(*contextDir, *export); err != nil {
			problem("export: %v", err)
		}
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, "dockerfilecheck: "+p)
		}
		os.Exit(1)
	}
	fmt.Printf("%d stages, context %d files, %.1f MB\n", len(stages), len(ctx.files), float64(ctx.bytes)/1e6)
}

// parse runs BuildKit's parser and instruction parser with its linter; every
// warning is a problem.
func parse(dockerfile string) []instructions.Stage {
	f, err := os.Open(dockerfile)
	if err != nil {
		problem("%v", err)
		return nil
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		problem("%s: %v", dockerfile, err)
		return nil
	}
	for _, w := range res.Warnings {
		problem("%s:%d: %s", dockerfile, w.Location.Start.Line, w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []parser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		problem("%s:%d: %s: %s", dockerfile, line, rule, msg)
	}})
	stages, _, err := instructions.Parse(res.AST, lint)
	if err != nil {
		problem("%s: %v", dockerfile, err)
		return nil
	}
	return stages
}

// checkImage checks the last stage: user, entrypoint, binary, ports, volumes.
func checkImage(stages []instructions.Stage, ctx context, bin string, expose, volumes []string) {
	last := stages[len(stages)-1]
	var user string
	var entrypoint []string
	var exposed, declared []string
	copied := map[string]*instructions.CopyCommand{} // destination -> COPY
	for _, c := range last.Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.EntrypointCommand:
			entrypoint = c.CmdLine
			if c.PrependShell {
				problem("ENTRYPOINT is in shell form: signals would go to sh, not to %s", bin)
			}
		case *instructions.ExposeCommand:
			exposed = append(exposed, c.Ports...)
		case *instructions.VolumeCommand:
			declared = append(declared, c.Volumes...)
		case *instructions.CopyCommand:
			copied[c.DestPath] = c
			if c.From == "" {
				for _, src := range c.SourcePaths {
					if !ctx.has(path.Clean(src)) {
						problem("COPY %s: not in the build context", src)
					}
				}
			}
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		problem("the last stage's USER %q is not a numeric non-root uid", user)
	}
	if len(entrypoint) == 0 {
		problem("the last stage has no ENTRYPOINT")
	} else if cp := copied[entrypoint[0]]; cp == nil || cp.From != "" {
		problem("ENTRYPOINT %s is not a file copied from the context", entrypoint[0])
	}
	checkBinary(stages, copied, bin)
	for _, p := range expose {
		if !slices.Contains(exposed, p) {
			problem("port %s is not EXPOSEd", p)
		}
	}
	for _, v := range volumes {
		if !slices.Contains(declared, v) {
			problem("no VOLUME %s", v)
		}
	}
}

// checkBinary checks that a stage runs `cargo build ... --bin BIN --locked`
// and that the last stage copies a file from that stage to .../bin/BIN.
func checkBinary(stages []instructions.Stage, copied map[string]*instructions.CopyCommand, bin string) {
	builder := ""
	for _, s := range stages[:len(stages)-1] {
		for _, c := range s.Commands {
			run, ok := c.(*instructions.RunCommand)
			if !ok {
				continue
			}
			words := strings.Fields(strings.Join(run.CmdLine, " "))
			i := slices.Index(words, "build")
			if i > 0 && words[i-1] == "cargo" && slices.Contains(words, "--locked") && slices.Contains(words, "--release") {
				if j := slices.Index(words, "--bin"); j >= 0 && j+1 < len(words) && words[j+1] == bin {
					builder = s.Name
				}
			}
		}
	}
	if builder == "" {
		problem("no stage runs `cargo build --release --locked --bin %s`", bin)
		return
	}
	for dest, cp := range copied {
		if cp.From == builder && path.Base(dest) == bin && strings.HasSuffix(path.Dir(dest), "/bin") {
			return
		}
	}
	problem("the last stage copies no %s from stage %s into a bin directory", bin, builder)
}

// context is what `docker build` would send: the files .dockerignore leaves.
type context struct {
	files []string // slash-separated, relative to the context
	bytes int64
}

func contextFiles(dir string) context {
	var patterns []string
	if f, err := os.Open(filepath.Join(dir, ".dockerignore")); err == nil {
		patterns, err = ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			problem(".dockerignore: %v", err)
		}
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		problem(".dockerignore: %v", err)
		return context{}
	}
	var ctx context
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if d.IsDir() {
			if excluded, _ := pm.MatchesOrParentMatches(rel); excluded && !mayHoldException(pm, rel) {
				return filepath.SkipDir
			}
			return nil
		}
		if excluded, err := pm.MatchesOrParentMatches(rel); err != nil || excluded {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		ctx.files = append(ctx.files, rel)
		ctx.bytes += info.Size()
		return nil
	})
	if err != nil {
		problem("walking the context: %v", err)
	}
	return ctx
}

// mayHoldException: an exception (!path) names something below excluded
// directory dir, so the walk goes on into it (as Docker's tar walk does).
func mayHoldException(pm *patternmatcher.PatternMatcher, dir string) bool {
	for _, p := range pm.Patterns() {
		if p.Exclusion() && strings.HasPrefix(p.String()+"/", dir+"/") {
			return true
		}
	}
	return false
}

// has: p is a file of the context, or a directory with files in it.
func (c context) has(p string) bool {
	for _, f := range c.files {
		if f == p || strings.HasPrefix(f, p+"/") {
			return true
		}
	}
	return false
}

func (c context) copyTo(from, to string) error {
	for _, f := range c.files {
		src, dst := filepath.Join(from, f), filepath.Join(to, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := copyFile(src, dst); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
