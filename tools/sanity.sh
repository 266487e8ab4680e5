#!/usr/bin/env bash
# make sanity: the collection as its ecosystem's tools see it. ansible-test sanity (no ignore
# entries), antsibull-changelog lint, and galaxy-importer on the built tarball; any error or
# warning fails.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/.venv/bin
export PATH=$bin:$PATH
python_version=$("$bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== antsibull-changelog lint"
(cd "$root" && antsibull-changelog lint)

# The collection as it ships: the tarball that `ansible-galaxy collection build` makes (the
# demo, tests, benchmarks and tool settings are not in it). galaxy-importer takes the tarball;
# ansible-test, like Galaxy's own import, its contents at .../ansible_collections/durable/eda.
ansible-galaxy collection build --output-path "$work/dist" "$root" >/dev/null
tarball=$(echo "$work"/dist/durable-eda-*.tar.gz)
collections=$work/ansible_collections
tree=$collections/durable/eda
mkdir -p "$tree" "$collections/amazon"
tar -xzf "$tarball" -C "$tree"
# amazon.aws, whose module_utils and doc fragments the modules use, beside it as the `ansible`
# package installed it.
site_collections=$("$bin/python" -c 'import ansible_collections; print(list(ansible_collections.__path__)[0])')
ln -s "$site_collections/amazon/aws" "$collections/amazon/aws"

# ansible-test bootstraps pip into its sanity environments with a get-pip.py it downloads from
# a host outside the package index; give it a stand-in that installs pip from the index, and
# lock what it installs with the project's pinned file.
pip_version=$(sed -n 's/^pip==//p' "$root/tests/sanity/constraints.txt")
cache=$HOME/.ansible/test/cache
mkdir -p "$cache"
cp "$root/tools/ansible-test/get_pip.py" "$cache/get_pip_${pip_version//./_}.py"

echo "== ansible-test sanity"
if compgen -G "$root/tests/sanity/ignore-*.txt" >/dev/null; then
  echo "tests/sanity/ignore-*.txt must not exist: fix the finding instead" >&2
  exit 1
fi
(cd "$tree" && PIP_CONSTRAINT=$root/tests/sanity/constraints.txt \
  ansible-test sanity --python "$python_version" --color no) 2>&1 | tee "$work/sanity.log"
# A test ansible-test skips (a program missing, no virtual environment) only warns. Not
# findings: pip's notes on this machine's index settings, and the C.UTF-8 locale fallback.
if grep '^WARNING: ' "$work/sanity.log" \
  | grep -Ev "^WARNING: (Location '|Using locale \"C.UTF-8\"|Reviewing previous)" | grep .; then
  echo "ansible-test sanity warned (above): a skipped test is not a passed one" >&2
  exit 1
fi

echo "== galaxy-importer"
# (in $work: it writes importer_result.json into the current directory)
(cd "$work" && GALAXY_IMPORTER_CONFIG=$root/tests/sanity/galaxy-importer.cfg \
  python -m galaxy_importer.main "$tarball") >"$work/importer.log" 2>&1 \
  || { cat "$work/importer.log"; exit 1; }
cat "$work/importer.log"
if grep -Eq '(WARNING|ERROR)' "$work/importer.log"; then
  echo "galaxy-importer reported the warnings or errors above" >&2
  exit 1
fi
