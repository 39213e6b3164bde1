"""MkDocs hook: the landing page is README.md and the notebooks are those of notebooks/, read where
they live (nothing is copied into docs/ by hand).

- `on_config`: the repository URL comes from `url` in setup.cfg (its one definition);
- `on_files`: adds README.md as `index.md` and every notebooks/*.ipynb as `notebooks/NAME.ipynb`
  (before mkdocs-jupyter sees the file list, so it renders them);
- `on_page_markdown`: a link written for the repository (README.md's `docs/figures/x.png`, or
  `../notebooks/NAME.ipynb` from a page in docs/) is rewritten to the same file in the site; a link
  to a repository file that is not part of the site points to the file on the repository's host.

Run by `mkdocs build --strict` (see mkdocs.yml); nothing here is imported by the package.
"""

from __future__ import annotations

import configparser
import posixpath
import re
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
README = "README.md"
NOTEBOOKS = "notebooks"
DOCS = "docs"

# a Markdown inline link or image: [text](target "title")
_LINK = re.compile(r'(!?\[[^\]\n]*\]\()([^)\s]+)((?:\s+"[^"\n]*")?\))')
_FENCE = re.compile(r"^\s*(```|~~~)")


def repository_url() -> str:
    """The `url` of setup.cfg's [metadata], without a trailing slash."""
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg", encoding="utf-8")
    url = parser.get("metadata", "url", fallback="").strip().rstrip("/")
    if not url:
        raise ValueError("setup.cfg [metadata] has no url; the site needs it for its source links")
    return url


def on_config(config):
    config["repo_url"] = repository_url()
    config["repo_name"] = config["repo_name"] or config["repo_url"].rsplit("/", 1)[-1]
    return config


@event_priority(100)  # before mkdocs-jupyter wraps the notebook files
def on_files(files, config):
    if files.get_file_from_path("index.md") is not None:
        raise ValueError("docs/index.md exists; the landing page is README.md (remove docs/index.md)")
    files.append(File.generated(config, "index.md", abs_src_path=str(ROOT / README)))
    for path in sorted((ROOT / NOTEBOOKS).glob("*.ipynb")):
        files.append(File(f"{NOTEBOOKS}/{path.name}", src_dir=str(ROOT), dest_dir=config["site_dir"],
                          use_directory_urls=config["use_directory_urls"]))
    return files


def on_page_markdown(markdown, page, config, files):
    repo_dir = "" if page.file.src_uri == "index.md" else posixpath.dirname(f"{DOCS}/{page.file.src_uri}")
    site_dir = posixpath.dirname(page.file.src_uri)
    out, in_fence = [], False
    for line in markdown.splitlines(keepends=True):
        if _FENCE.match(line):
            in_fence = not in_fence
        if not in_fence:
            line = _LINK.sub(lambda m: m.group(1) + _site_link(m.group(2), repo_dir, site_dir, config) + m.group(3),
                             line)
        out.append(line)
    return "".join(out)


def _site_link(target: str, repo_dir: str, site_dir: str, config) -> str:
    """The site's link for `target`, a link written relative to the file's place in the repository."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith(("#", "/")):
        return target  # absolute URL, anchor or site-absolute path: unchanged
    path, _, anchor = target.partition("#")
    repo_path = posixpath.normpath(posixpath.join(repo_dir, path))
    if repo_path == README:
        site_path = "index.md"
    elif repo_path.startswith(f"{DOCS}/"):
        site_path = repo_path[len(DOCS) + 1:]
    elif repo_path.startswith(f"{NOTEBOOKS}/") and repo_path.endswith(".ipynb"):
        site_path = repo_path
    elif repo_path.startswith(".."):
        raise ValueError(f"link {target!r} leaves the repository")
    else:  # a file of the repository that the site does not hold
        kind = "tree" if (ROOT / repo_path).is_dir() else "blob"
        return f"{config['repo_url']}/{kind}/main/{repo_path}" + (f"#{anchor}" if anchor else "")
    rel = posixpath.relpath(site_path, site_dir or ".")
    return rel + (f"#{anchor}" if anchor else "")
