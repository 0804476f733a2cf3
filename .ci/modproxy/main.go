// Command modproxy builds a file-system Go module proxy (for
// GOPROXY=file://DIR) from this repository, so that CI and a maintainer can
// resolve the repository's modules at a version that is not yet published,
// the way a user resolves a published one.
//
//	modproxy build -o DIR -version VERSION [-repo ROOT]
//	modproxy tamper -o DIR MODULE@VERSION
//	modproxy work [-check] [-repo ROOT]
//
// build serves every module that go.work in ROOT uses (default: the current
// directory) at VERSION, from the working tree: the files git tracks or
// would track (untracked files that .gitignore excludes are left out), as
// they are on disk, so the zip is what a release commit of the tree would
// hold. Each module is also served at every version it is tagged with
// (vX.Y.Z for the root module, DIR/vX.Y.Z for the one in DIR), from the tag,
// as a public proxy would serve that release. VERSION must not be tagged
// already: after a release, the tree is the next version. build prints the
// go.sum lines of everything it serves.
//
// work points go.work's replace directives at the working tree for each
// version at which one module of the workspace requires another: go.work
// ties the modules together, but the go command still reads the go.mod of a
// required version to build the module graph, and a version not yet
// published has none anywhere else. -check changes nothing and fails if
// go.work is not so.
//
// tamper adds a file to a module zip the proxy serves, so that its hash no
// longer matches the go.sum lines build printed: CI uses it to show that the
// go command refuses a module whose content changed under a recorded sum.
package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "build":
		err = build(os.Args[2:])
	case "tamper":
		err = tamper(os.Args[2:])
	case "work":
		err = work(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "modproxy:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: modproxy build -o DIR -version VERSION [-repo ROOT]\n       modproxy tamper -o DIR MODULE@VERSION\n       modproxy work [-check] [-repo ROOT]")
	os.Exit(2)
}

// workModule is one module of the workspace.
type workModule struct {
	dir  string // slash-separated, relative to the repository root; "" for the root
	path string // module path
}

func build(args []string) error {
	fs := flag.NewFlagSet("build", flag.ExitOnError)
	out := fs.String("o", "", "proxy `directory` to write")
	version := fs.String("version", "", "`version` to serve the working tree at")
	repo := fs.String("repo", ".", "repository `root` holding go.work")
	fs.Parse(args)
	if *out == "" || fs.NArg() != 0 || !semver.IsValid(*version) || semver.Canonical(*version) != *version {
		return fmt.Errorf("build needs -o DIR and a canonical -version (vX.Y.Z), got %q", *version)
	}
	root, err := filepath.Abs(*repo)
	if err != nil {
		return err
	}
	mods, err := workspaceModules(root)
	if err != nil {
		return err
	}
	tags, err := gitTags(root)
	if err != nil {
		return err
	}
	var sums []string
	for _, m := range mods {
		prefix := ""
		if m.dir != "" {
			prefix = m.dir + "/"
		}
		var versions []string
		for _, tag := range tags {
			v, ok := strings.CutPrefix(tag, prefix)
			if !ok || strings.Contains(v, "/") || !semver.IsValid(v) {
				continue
			}
			if v == *version {
				return fmt.Errorf("%s is tagged %s already: serve the tree as the next version", m.path, tag)
			}
			mod, err := exec.Command("git", "-C", root, "show", tag+":"+prefix+"go.mod").Output()
			if err != nil {
				return fmt.Errorf("%s at %s: reading go.mod: %w", m.path, tag, err)
			}
			var zipped bytes.Buffer
			if err := modzip.CreateFromVCS(&zipped, module.Version{Path: m.path, Version: v}, root, tag, m.dir); err != nil {
				return err
			}
			s, err := publish(*out, m.path, v, tagTime(root, tag), mod, zipped.Bytes())
			if err != nil {
				return err
			}
			sums = append(sums, s...)
			versions = append(versions, v)
		}
		dir := filepath.Join(root, filepath.FromSlash(m.dir))
		mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err != nil {
			return err
		}
		files, err := treeFiles(root, m.dir)
		if err != nil {
			return err
		}
		var zipped bytes.Buffer
		if err := modzip.Create(&zipped, module.Version{Path: m.path, Version: *version}, files); err != nil {
			return err
		}
		s, err := publish(*out, m.path, *version, time.Now().UTC(), mod, zipped.Bytes())
		if err != nil {
			return err
		}
		sums = append(sums, s...)
		versions = append(versions, *version)
		if err := writeList(*out, m.path, versions); err != nil {
			return err
		}
	}
	for _, s := range sums {
		fmt.Println(s)
	}
	return nil
}

// workspaceModules returns the modules that go.work in root uses.
func workspaceModules(root string) ([]workModule, error) {
	name := filepath.Join(root, "go.work")
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	work, err := modfile.ParseWork(name, data, nil)
	if err != nil {
		return nil, err
	}
	var mods []workModule
	for _, use := range work.Use {
		dir := path.Clean(filepath.ToSlash(use.Path))
		if dir == "." {
			dir = ""
		}
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(dir), "go.mod"))
		if err != nil {
			return nil, err
		}
		mp := modfile.ModulePath(data)
		if mp == "" {
			return nil, fmt.Errorf("%s/go.mod: no module path", use.Path)
		}
		mods = append(mods, workModule{dir: dir, path: mp})
	}
	return mods, nil
}

// gitTags lists the repository's tags.
func gitTags(root string) ([]string, error) {
	out, err := exec.Command("git", "-C", root, "tag", "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("git tag --list: %w", err)
	}
	return strings.Fields(string(out)), nil
}

// tagTime is the commit time of tag, or now if git cannot tell.
func tagTime(root, tag string) time.Time {
	out, err := exec.Command("git", "-C", root, "log", "-1", "--format=%cI", tag).Output()
	if err != nil {
		return time.Now().UTC()
	}
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(string(out)))
	if err != nil {
		return time.Now().UTC()
	}
	return t.UTC()
}

// treeFiles lists the module's files in the working tree that a commit of
// it would hold: tracked files that still exist, and untracked files that
// .gitignore does not exclude. modzip.Create leaves out nested modules.
func treeFiles(root, dir string) ([]modzip.File, error) {
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", ".")
	cmd.Dir = filepath.Join(root, filepath.FromSlash(dir))
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git ls-files in %q: %w", dir, err)
	}
	var files []modzip.File
	seen := map[string]bool{}
	for _, rel := range strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00") {
		if rel == "" || seen[rel] {
			continue
		}
		seen[rel] = true
		name := filepath.Join(cmd.Dir, filepath.FromSlash(rel))
		info, err := os.Lstat(name)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the working tree
		}
		if err != nil {
			return nil, err
		}
		files = append(files, diskFile{slashPath: rel, name: name, info: info})
	}
	return files, nil
}

type diskFile struct {
	slashPath, name string
	info            os.FileInfo
}

func (f diskFile) Path() string                 { return f.slashPath }
func (f diskFile) Lstat() (os.FileInfo, error)  { return f.info, nil }
func (f diskFile) Open() (io.ReadCloser, error) { return os.Open(f.name) }

// publish writes the .info, .mod and .zip files of modPath@version to the
// proxy in out and returns their go.sum lines.
func publish(out, modPath, version string, at time.Time, mod, zipped []byte) ([]string, error) {
	dir, err := versionDir(out, modPath)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	info, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, at})
	if err != nil {
		return nil, err
	}
	zipName := filepath.Join(dir, version+".zip")
	for name, data := range map[string][]byte{version + ".info": info, version + ".mod": mod, version + ".zip": zipped} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return nil, err
		}
	}
	zipHash, err := dirhash.HashZip(zipName, dirhash.Hash1)
	if err != nil {
		return nil, err
	}
	modHash, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(mod)), nil
	})
	if err != nil {
		return nil, err
	}
	return []string{
		fmt.Sprintf("%s %s %s", modPath, version, zipHash),
		fmt.Sprintf("%s %s/go.mod %s", modPath, version, modHash),
	}, nil
}

// versionDir is the @v directory of modPath in the proxy in out.
func versionDir(out, modPath string) (string, error) {
	escaped, err := module.EscapePath(modPath)
	if err != nil {
		return "", err
	}
	return filepath.Join(out, filepath.FromSlash(escaped), "@v"), nil
}

func writeList(out, modPath string, versions []string) error {
	dir, err := versionDir(out, modPath)
	if err != nil {
		return err
	}
	semver.Sort(versions)
	versions = slices.Compact(versions)
	return os.WriteFile(filepath.Join(dir, "list"), []byte(strings.Join(versions, "\n")+"\n"), 0o644)
}

func tamper(args []string) error {
	fs := flag.NewFlagSet("tamper", flag.ExitOnError)
	out := fs.String("o", "", "proxy `directory`")
	fs.Parse(args)
	modPath, version, ok := strings.Cut(fs.Arg(0), "@")
	if *out == "" || fs.NArg() != 1 || !ok {
		return errors.New("tamper needs -o DIR MODULE@VERSION")
	}
	dir, err := versionDir(*out, modPath)
	if err != nil {
		return err
	}
	name := filepath.Join(dir, version+".zip")
	r, err := zip.OpenReader(name)
	if err != nil {
		return err
	}
	defer r.Close()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, f := range r.File {
		if err := w.Copy(f); err != nil {
			return err
		}
	}
	extra, err := w.Create(modPath + "@" + version + "/tampered.go")
	if err != nil {
		return err
	}
	fmt.Fprintln(extra, "package tampered")
	if err := w.Close(); err != nil {
		return err
	}
	return os.WriteFile(name, buf.Bytes(), 0o644)
}

func work(args []string) error {
	fs := flag.NewFlagSet("work", flag.ExitOnError)
	check := fs.Bool("check", false, "change nothing; fail if go.work is out of date")
	repo := fs.String("repo", ".", "repository `root` holding go.work")
	fs.Parse(args)
	if fs.NArg() != 0 {
		return errors.New("work takes no arguments")
	}
	name := filepath.Join(*repo, "go.work")
	data, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	wf, err := modfile.ParseWork(name, data, nil)
	if err != nil {
		return err
	}
	mods, err := workspaceModules(*repo)
	if err != nil {
		return err
	}
	dirs := map[string]string{} // module path -> replacement directory
	for _, m := range mods {
		dirs[m.path] = "./" + m.dir
	}
	for _, r := range slices.Clone(wf.Replace) {
		if _, ok := dirs[r.Old.Path]; ok {
			if err := wf.DropReplace(r.Old.Path, r.Old.Version); err != nil {
				return err
			}
		}
	}
	var want []module.Version
	for _, m := range mods {
		gomod := filepath.Join(*repo, filepath.FromSlash(m.dir), "go.mod")
		data, err := os.ReadFile(gomod)
		if err != nil {
			return err
		}
		f, err := modfile.ParseLax(gomod, data, nil)
		if err != nil {
			return err
		}
		for _, r := range f.Require {
			if _, ok := dirs[r.Mod.Path]; ok && !slices.Contains(want, r.Mod) {
				want = append(want, r.Mod)
			}
		}
	}
	slices.SortFunc(want, func(a, b module.Version) int { return strings.Compare(a.Path+" "+a.Version, b.Path+" "+b.Version) })
	for _, m := range want {
		if err := wf.AddReplace(m.Path, m.Version, dirs[m.Path], ""); err != nil {
			return err
		}
	}
	wf.Cleanup()
	out := modfile.Format(wf.Syntax)
	if bytes.Equal(out, data) {
		return nil
	}
	if *check {
		return fmt.Errorf("go.work does not replace exactly the versions the modules require of each other; want:\n%s", out)
	}
	return os.WriteFile(name, out, 0o644)
}
