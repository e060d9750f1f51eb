"""Every snippet of README.md, docs/*.md and the console's pages runs as written against a real server.

One server for the module, started in the reader's folder as `flashml serve` is in README's set-up; its first-run
link is opened as README says, and then the pages run in the order the site shows them (README first), each one as
one shell script in that folder, with what earlier pages exported (README's KEY) and nothing else. A page may assume
what it names but does not make (a photo, a detector): GIVEN makes it first. tests/helpers/snippets.py says what is
changed in the text (only the server's address) and how a snippet that cannot run is marked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.helpers import task_models as tm
from tests.helpers.server_process import SERVER_FLAGS, ServerProcess, login_token
from tests.helpers.snippets import DATA_LANGUAGES, RUN_LANGUAGES, Reader, html_snippets, page_snippets, stray_markers
from tests.helpers.tasks import CLS_TOML, DET_TOML, EMB_TOML, png
from tests.helpers.uploads import upload

pytestmark = pytest.mark.server
ROOT = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "a reader's password"


def _nav_pages(nav: list) -> Iterator[str]:
    for entry in nav:
        for value in (entry.values() if isinstance(entry, dict) else [entry]):
            yield from (_nav_pages(value) if isinstance(value, list) else [value])


def reading_order() -> list[str]:
    """README.md, then docs/ in the site's order (mkdocs.yml's nav), then any page the nav leaves out."""
    nav = [f"docs/{p}" for p in _nav_pages(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"])]
    rest = sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md") if f"docs/{p.name}" not in nav)
    return ["README.md", *nav, *rest]


PAGES = reading_order()


def _task_models(reader: Reader, api: httpx.Client) -> None:
    """docs/tasks.md calls its readers' pets classifier, detector (through its production alias) and minilm
    embedder with their photos: small stand-ins under those names, and three photos."""
    made = reader.folder.parent / "given"
    made.mkdir()
    tokenizer = tm.tokenizer_json(made / "tokenizer.json")
    bundles = {
        "pets": tm.bundle(made / "pets.tar.gz", CLS_TOML, tm.image_classifier(made / "pets.onnx",
                                                                              labels=["cat", "dog", "bird"])),
        "detector": tm.bundle(made / "detector.tar.gz", DET_TOML, tm.yolo_detector(made / "detector.onnx")),
        "minilm": tm.bundle(made / "minilm.tar.gz", EMB_TOML, tm.embedder(made / "minilm.onnx"),
                            **{"tokenizer.json": tokenizer}),
    }
    for name, path in bundles.items():
        r = upload(api, name, path, filename="bundle.tar.gz")
        assert r.status_code == 201, r.text
    r = api.put("/api/v1/models/detector/aliases/production", json={"version": 1})
    assert r.status_code == 200, r.text
    for seed, photo in enumerate(("cat.jpg", "dog.jpg", "street.jpg", "photo.jpg")):
        (reader.folder / photo).write_bytes(png(80, 60, seed, fmt="JPEG"))


# What a page assumes its reader has, made before it runs; and what the reader types at a prompt.
GIVEN: dict[str, Callable[[Reader, httpx.Client], None]] = {"docs/tasks.md": _task_models}
TYPED = {"docs/console.md": "alice's password"}


class FollowedDocs:
    """The reader, the server, the console signed in through the first-run link, and the pages read so far."""

    def __init__(self, reader: Reader, server: ServerProcess, console: httpx.Client, setup_page: str,
                 admin_key: str) -> None:
        self.reader, self.server, self.console = reader, server, console
        self.setup_page, self.admin_key = setup_page, admin_key
        self.read: dict[str, str | AssertionError] = {}

    def through(self, doc: str) -> str:
        """Read the pages in order up to ``doc`` (once each); ``doc``'s output."""
        for name in PAGES[:PAGES.index(doc) + 1]:
            if name not in self.read:
                self.read[name] = self._read(name)
            failed = self.read[name]
            if isinstance(failed, AssertionError):
                if name == doc:
                    raise failed
                raise AssertionError(f"{name} failed (its own test says how), so {doc} was not read") from None
        return str(self.read[doc])

    def _read(self, doc: str) -> str | AssertionError:
        try:
            if doc in GIVEN:
                with httpx.Client(base_url=self.server.url, timeout=120,
                                  headers={"Authorization": f"Bearer {self.admin_key}"}) as api:
                    GIVEN[doc](self.reader, api)
            return self.reader.run_page(page_snippets(ROOT / doc, ROOT), what=doc, typed=TYPED.get(doc))
        except AssertionError as exc:
            return exc


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FollowedDocs]:
    folder = tmp_path_factory.mktemp("reader") / "work"
    folder.mkdir()
    server = ServerProcess(folder / "flashml-data", *SERVER_FLAGS).start()
    try:
        # README's set-up: open the link the first start printed and create the first admin.
        link = server.setup_url()
        assert link, server.log()
        console = httpx.Client(base_url=server.url, timeout=60)
        done = console.post("/setup/", data={"token": link.split("token=")[1], "name": "reader",
                                             "password": ADMIN_PASSWORD, "password_again": ADMIN_PASSWORD,
                                             **login_token(console)})
        assert done.status_code == 200, done.text
        key = re.search(r'id="api-key">([^<]+)<', done.text)
        assert key, done.text
        yield FollowedDocs(Reader(folder, server.url), server, console, done.text, key.group(1))
        console.close()
    finally:
        server.stop()


def test_every_snippet_runs_or_says_why_not():
    kept_out = []
    for doc in PAGES:
        assert not stray_markers(ROOT / doc), f"{doc}: a not-run marker on a line that is not just before a fence"
        for s in page_snippets(ROOT / doc, ROOT):
            assert s.language in RUN_LANGUAGES | DATA_LANGUAGES, \
                f"{s.where}: a fence says '{s.language}': name a language the tests run ({sorted(RUN_LANGUAGES)}) " \
                f"or one they read as data ({sorted(DATA_LANGUAGES)})"
            if s.not_run is not None:
                assert s.language in RUN_LANGUAGES and s.not_run, f"{s.where}: a not-run marker needs a reason"
                kept_out.append(s.where)
    # Few, each with its reason in the page: installing, starting a server that runs until stopped, sudo.
    assert len(kept_out) <= 6, kept_out


@pytest.mark.parametrize("doc", PAGES)
def test_page_snippets_run_as_written(docs: FollowedDocs, doc: str):
    docs.through(doc)


def test_the_quickstart_answers_what_readme_says(docs: FollowedDocs):
    said = re.search(r"The last call answers `(\{.*?\})`", (ROOT / "README.md").read_text())
    assert said, "README no longer says what the quickstart's last call answers"
    assert said.group(1) in docs.through("README.md")


def test_the_setup_page_snippet_runs(docs: FollowedDocs):
    (snippet,) = html_snippets(docs.setup_page)
    assert '"role":"admin"' in docs.reader.run(*snippet, what="the setup page").replace(" ", "")


@pytest.mark.parametrize("model", ["adder", "pets", "minilm"])
def test_the_model_page_snippets_run(docs: FollowedDocs, model: str):
    docs.through("docs/tasks.md")  # adder from README, the task models from its GIVEN
    first = docs.console.get(f"/models/{model}")
    assert first.status_code == 200, first.text
    # The page and each of its sections, when it has some (?tab=...).
    pages = [first.text] + [docs.console.get(f"/models/{model}?tab={tab}").text
                            for tab in dict.fromkeys(re.findall(r'href="/models/[^"?]+\?tab=(\w+)"', first.text))]
    names = {n for html in pages for n in re.findall(r"Set <code>(\w+)</code> to an API key", html)}
    assert names, "the model page no longer says which variable holds the key"
    snippets = list(dict.fromkeys(s for html in pages for s in html_snippets(html)))
    assert {lang for lang, _ in snippets} == {"bash", "python"}
    for language, code in snippets:
        out = docs.reader.run(language, code, what=f"/models/{model} ({language})",
                              extra_env=dict.fromkeys(names, docs.admin_key))
        assert out.strip(), f"the {language} snippet of /models/{model} printed nothing"
