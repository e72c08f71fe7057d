"""Weights registry (issue #2, item 9): look-up order, checksums, offline use, downloads, CLI.

Downloads come from a local HTTP server on 127.0.0.1 that serves a temporary folder; temporary
specs are registered with ``monkeypatch.setitem`` so the real registry is untouched afterwards.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cleanplate import weights
from cleanplate._cli.main import app
from cleanplate.errors import WeightsError
from cleanplate.weights import WeightsSpec

PAYLOAD = bytes(range(256)) * (10 * 1024 + 7)  # ~2.5 MiB: the downloader reads 1 MiB chunks
OTHER = bytes(reversed(PAYLOAD))  # same size, other bytes
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _spec(name: str, urls: tuple[str, ...] = (), *, data: bytes = PAYLOAD, **kw: object) -> WeightsSpec:
    fields: dict[str, object] = {"sha256": _sha(data), "size": len(data)} | kw
    return WeightsSpec(name=name, filename=f"{name}.bin", urls=urls, license="test", description="test weights",
                       kind="test", **fields)  # type: ignore[arg-type]


def _files(folder: Path) -> list[str]:
    """Every entry of ``folder`` (hidden ``.part`` files included); [] when it does not exist."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _one_line(msg: str) -> None:
    assert msg and "\n" not in msg, msg
    assert "Traceback" not in msg


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A private cache, no offline folders, online, no proxy in the way of 127.0.0.1."""
    monkeypatch.setenv("CLEANPLATE_HOME", str(tmp_path / "home"))
    for var in ("CLEANPLATE_WEIGHTS", "CLEANPLATE_OFFLINE", "HF_HUB_OFFLINE",
                "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def _register(monkeypatch: pytest.MonkeyPatch, spec: WeightsSpec) -> WeightsSpec:
    monkeypatch.setitem(weights.REGISTRY, spec.name, spec)
    return spec


# --- local HTTP server -------------------------------------------------------------------------

class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the folder; ``/truncated/NAME`` announces more bytes than it sends, then hangs up."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.startswith("/truncated/"):
            data = (Path(self.directory) / self.path.removeprefix("/truncated/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data) + 1000))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        pass


@dataclass
class Server:
    root: Path
    url: str
    requests: list[str]

    def put(self, name: str, data: bytes) -> str:
        (self.root / name).write_bytes(data)
        return self.url + name


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Server:
    root = tmp_path / "srv"
    root.mkdir()
    seen: list[str] = []

    class Handler(_Handler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.path)
            super().do_GET()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()

    def stop() -> None:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)

    request.addfinalizer(stop)
    return Server(root, f"http://127.0.0.1:{httpd.server_address[1]}/", seen)


@pytest.fixture
def dead_url() -> Iterator[str]:
    """A URL on a port that is bound but not listening: connections are refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/w.bin"
    sock.close()


# --- look-up order -----------------------------------------------------------------------------

def test_lookup_order_checkpoint_env_cache_download(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                    server: Server) -> None:
    spec = _register(monkeypatch, _spec("order-test", (server.put("w.bin", PAYLOAD),)))
    env1, env2 = tmp_path / "env1", tmp_path / "env2"
    env1.mkdir()
    env2.mkdir()
    monkeypatch.setenv("CLEANPLATE_WEIGHTS", os.pathsep.join([str(env1), str(env2)]))
    cache = weights.cache_dir()
    assert cache == tmp_path / "home" / "weights"
    cache.mkdir(parents=True)
    for folder in (env1, env2, cache):
        (folder / spec.filename).write_bytes(PAYLOAD)
    own = tmp_path / "mine.bin"
    own.write_bytes(b"my own fine-tune")  # the user's own file: used as is, no checksum

    use = weights.resolve(spec.name, checkpoint=own)
    assert (use.source, Path(use.path), use.sha256) == ("checkpoint", own.resolve(), _sha(b"my own fine-tune"))

    steps = [("env", env1), ("env", env2), ("cache", cache)]
    for source, folder in steps:
        use = weights.resolve(spec.name)
        assert (use.source, Path(use.path), use.sha256) == (source, folder / spec.filename, spec.sha256)
        (folder / spec.filename).unlink()
    assert server.requests == []  # nothing downloaded while a local copy existed

    use = weights.resolve(spec.name)
    assert (use.source, Path(use.path), use.sha256) == ("download", cache / spec.filename, spec.sha256)
    assert server.requests == ["/w.bin"]
    use = weights.resolve(spec.name)  # now cached
    assert use.source == "cache" and server.requests == ["/w.bin"]


def test_bundled_comes_after_env_and_before_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLEANPLATE_OFFLINE", "1")
    bundled = weights.bundled_dir() / "u2netp.onnx"
    cache = weights.cache_dir()
    cache.mkdir(parents=True)
    shutil.copy(bundled, cache / "u2netp.onnx")
    assert weights.resolve("u2netp").source == "bundled"

    env = tmp_path / "env"
    env.mkdir()
    shutil.copy(bundled, env / "u2netp.onnx")
    monkeypatch.setenv("CLEANPLATE_WEIGHTS", str(env))
    use = weights.resolve("u2netp")
    assert (use.source, Path(use.path)) == ("env", env / "u2netp.onnx")


def test_missing_checkpoint_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(WeightsError) as info:
        weights.resolve("u2netp", checkpoint=tmp_path / "nope.onnx")
    _one_line(str(info.value))
    assert "checkpoint not found" in str(info.value) and "nope.onnx" in str(info.value)


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(WeightsError, match=r"unknown weights 'nope' \(known: .*u2netp"):
        weights.resolve("nope")


@pytest.mark.parametrize("var", ["CLEANPLATE_OFFLINE", "HF_HUB_OFFLINE"])
def test_bundled_u2netp_resolves_offline(monkeypatch: pytest.MonkeyPatch, var: str) -> None:
    monkeypatch.setenv(var, "1")
    assert weights.offline()
    use = weights.resolve("u2netp")
    bundled = weights.bundled_dir() / "u2netp.onnx"
    expected = hashlib.sha256(bundled.read_bytes()).hexdigest()
    assert use.source == "bundled"
    assert Path(use.path) == bundled
    assert use.sha256 == expected == weights.REGISTRY["u2netp"].sha256
    assert bundled.stat().st_size == weights.REGISTRY["u2netp"].size
    assert _files(weights.cache_dir()) == []


# --- offline and missing -----------------------------------------------------------------------

@pytest.mark.parametrize("var", ["CLEANPLATE_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_missing_names_file_url_and_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                   server: Server, var: str) -> None:
    url = server.put("w.bin", PAYLOAD)  # would succeed if offline were ignored
    spec = _register(monkeypatch, _spec("offline-test", (url,)))
    env = tmp_path / "env"
    monkeypatch.setenv("CLEANPLATE_WEIGHTS", str(env))
    monkeypatch.setenv(var, "1")
    with pytest.raises(WeightsError) as info:
        weights.resolve(spec.name)
    msg = str(info.value)
    _one_line(msg)
    assert info.value.__cause__ is None
    for part in ("offline-test", spec.filename, url, str(weights.cache_dir()), str(env)):
        assert part in msg
    assert server.requests == []
    assert _files(weights.cache_dir()) == []


def test_download_false_refuses_even_online(monkeypatch: pytest.MonkeyPatch, server: Server) -> None:
    spec = _register(monkeypatch, _spec("nodl-test", (server.put("w.bin", PAYLOAD),)))
    with pytest.raises(WeightsError, match="not found"):
        weights.resolve(spec.name, download=False)
    assert server.requests == [] and _files(weights.cache_dir()) == []


def test_offline_real_registry_entry_names_its_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANPLATE_OFFLINE", "1")
    spec = weights.REGISTRY["isnet-anime"]
    with pytest.raises(WeightsError) as info:
        weights.resolve("isnet-anime")
    _one_line(str(info.value))
    assert spec.urls[0] in str(info.value) and "isnet-anime.onnx" in str(info.value)


# --- corrupt files -----------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["cache", "env"])
@pytest.mark.parametrize("bad", [OTHER, PAYLOAD[:1000]], ids=["same-size", "short"])
def test_corrupt_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, where: str, bad: bytes) -> None:
    spec = _register(monkeypatch, _spec("corrupt-test", ("http://127.0.0.1:9/never",)))
    if where == "env":
        folder = tmp_path / "env"
        monkeypatch.setenv("CLEANPLATE_WEIGHTS", str(folder))
    else:
        folder = weights.cache_dir()
    folder.mkdir(parents=True)
    path = folder / spec.filename
    path.write_bytes(bad)
    with pytest.raises(WeightsError) as info:
        weights.resolve(spec.name)
    msg = str(info.value)
    _one_line(msg)
    assert str(path) in msg and "corrupt" in msg
    assert ("sha256" if len(bad) == len(PAYLOAD) else "size") in msg


def test_corrupt_md5_only_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _register(monkeypatch, _spec("md5-test", sha256=None, size=None,
                                        md5=hashlib.md5(PAYLOAD).hexdigest()))
    weights.cache_dir().mkdir(parents=True)
    (weights.cache_dir() / spec.filename).write_bytes(OTHER)
    with pytest.raises(WeightsError, match=r"corrupt \(md5 "):
        weights.resolve(spec.name)
    (weights.cache_dir() / spec.filename).write_bytes(PAYLOAD)
    assert weights.resolve(spec.name).source == "cache"


# --- downloads ---------------------------------------------------------------------------------

def test_download_success(monkeypatch: pytest.MonkeyPatch, server: Server) -> None:
    spec = _register(monkeypatch, _spec("dl-test", (server.put("w.bin", PAYLOAD),)))
    calls: list[tuple[int, int | None]] = []
    use = weights.resolve(spec.name, progress=lambda done, total: calls.append((done, total)))
    cache = weights.cache_dir()
    assert use.source == "download"
    assert Path(use.path) == cache / spec.filename
    assert (cache / spec.filename).read_bytes() == PAYLOAD
    assert use.sha256 == _sha(PAYLOAD)
    assert _files(cache) == [spec.filename]  # no .part left behind
    done = [d for d, _ in calls]
    assert len(done) >= 2 and done == sorted(set(done)) and done[-1] == len(PAYLOAD)
    assert {t for _, t in calls} == {len(PAYLOAD)}


def test_download_checksum_mismatch_leaves_nothing(monkeypatch: pytest.MonkeyPatch, server: Server) -> None:
    url = server.put("w.bin", OTHER)
    spec = _register(monkeypatch, _spec("bad-dl-test", (url,)))
    with pytest.raises(WeightsError) as info:
        weights.resolve(spec.name)
    msg = str(info.value)
    _one_line(msg)
    assert "refused" in msg and "checksum mismatch" in msg and url in msg
    assert _files(weights.cache_dir()) == []


def test_download_404_then_second_url(monkeypatch: pytest.MonkeyPatch, server: Server) -> None:
    good = server.put("good.bin", PAYLOAD)
    spec = _register(monkeypatch, _spec("mirror-test", (server.url + "missing.bin", good)))
    use = weights.resolve(spec.name)
    assert use.source == "download" and use.sha256 == _sha(PAYLOAD)
    assert server.requests == ["/missing.bin", "/good.bin"]
    assert _files(weights.cache_dir()) == [spec.filename]


def test_download_bad_bytes_then_second_url(monkeypatch: pytest.MonkeyPatch, server: Server) -> None:
    spec = _register(monkeypatch, _spec("mirror2-test", (server.put("bad.bin", OTHER), server.put("ok.bin", PAYLOAD))))
    assert weights.resolve(spec.name).source == "download"
    assert (weights.cache_dir() / spec.filename).read_bytes() == PAYLOAD
    assert _files(weights.cache_dir()) == [spec.filename]


def test_download_all_404(monkeypatch: pytest.MonkeyPatch, server: Server) -> None:
    spec = _register(monkeypatch, _spec("gone-test", (server.url + "a.bin", server.url + "b.bin")))
    with pytest.raises(WeightsError) as info:
        weights.resolve(spec.name)
    _one_line(str(info.value))
    assert "cannot download 'gone-test'" in str(info.value) and "HTTP 404" in str(info.value)
    assert _files(weights.cache_dir()) == []


def test_download_unreachable(monkeypatch: pytest.MonkeyPatch, dead_url: str) -> None:
    spec = _register(monkeypatch, _spec("dead-test", (dead_url,)))
    with pytest.raises(WeightsError) as info:
        weights.resolve(spec.name)
    msg = str(info.value)
    _one_line(msg)
    assert "cannot download 'dead-test'" in msg and dead_url in msg and str(weights.cache_dir()) in msg
    assert _files(weights.cache_dir()) == []


@pytest.mark.parametrize("checked", [True, False], ids=["with-checksum", "no-checksum"])
def test_download_connection_dropped_midway(monkeypatch: pytest.MonkeyPatch, server: Server, checked: bool) -> None:
    """A short read is a failed download, even for a spec without size or checksum (downloaded only
    with the user's explicit override)."""
    server.put("w.bin", PAYLOAD)
    kw = {} if checked else {"sha256": None, "size": None}
    if not checked:
        monkeypatch.setenv(weights.ALLOW_UNVERIFIED_ENV, "1")
    spec = _register(monkeypatch, _spec("drop-test", (server.url + "truncated/w.bin",), **kw))
    with pytest.raises(WeightsError) as info:
        weights.resolve(spec.name)
    _one_line(str(info.value))
    assert "cannot download 'drop-test'" in str(info.value) and "connection closed" in str(info.value)
    assert _files(weights.cache_dir()) == []


def test_download_file_into_other_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, server: Server) -> None:
    spec = _spec("dest-test", (server.put("w.bin", PAYLOAD),))
    dest = tmp_path / "elsewhere" / "deep"
    path = weights.download_file(spec, dest_dir=dest)
    assert path == dest / spec.filename and path.read_bytes() == PAYLOAD
    assert _files(dest) == [spec.filename]


# --- verify ------------------------------------------------------------------------------------

def test_verify_reports_ok_missing_corrupt(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ok, missing, corrupt = (_register(monkeypatch, _spec(n)) for n in ("v-ok", "v-missing", "v-corrupt"))
    env = tmp_path / "env"
    env.mkdir()
    monkeypatch.setenv("CLEANPLATE_WEIGHTS", str(env))
    weights.cache_dir().mkdir(parents=True)
    (weights.cache_dir() / ok.filename).write_bytes(PAYLOAD)
    (env / corrupt.filename).write_bytes(OTHER)

    got = {spec.name: (state, path) for spec, state, path in weights.verify([ok.name, missing.name, corrupt.name])}
    assert got[ok.name] == ("ok", str(weights.cache_dir() / ok.filename))
    assert got[missing.name] == ("missing", None)
    assert got[corrupt.name][0].startswith("corrupt: sha256") and got[corrupt.name][1] == str(env / corrupt.filename)

    everything = {spec.name: state for spec, state, _ in weights.verify()}
    assert everything["u2netp"] == "ok"
    assert {ok.name, missing.name, corrupt.name} <= set(everything)


def test_verify_and_resolve_model_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Hugging Face specs (SAM2) are folders: found in the look-up folders by their config.json."""
    spec = _register(monkeypatch, WeightsSpec(name="hf-test", filename="hf-test", urls=(), license="test",
                                              description="test", kind="sam2", hf_repo="cleanplate-test/none"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert weights.verify([spec.name]) == [(spec, "missing", None)]
    with pytest.raises(WeightsError) as info:
        weights.resolve(spec.name)
    _one_line(str(info.value))
    assert str(weights.cache_dir() / spec.filename) in str(info.value)

    folder = tmp_path / "env" / spec.filename
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(PAYLOAD)
    monkeypatch.setenv("CLEANPLATE_WEIGHTS", str(tmp_path / "env"))
    use = weights.resolve(spec.name)
    assert (use.source, Path(use.path), use.sha256) == ("env", folder, _sha(PAYLOAD))
    assert weights.verify([spec.name]) == [(spec, "ok", str(folder))]


# --- CLI ---------------------------------------------------------------------------------------

def _cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "250", **(env or {})})
    return result.exit_code, ANSI.sub("", result.stdout), ANSI.sub("", result.stderr)


def _error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("error:")]


def test_cli_list_shows_registry() -> None:
    code, out, _ = _cli("weights", "list")
    assert code == 0
    rows = {ln.split("│")[1].strip(): ln for ln in out.splitlines() if ln.count("│") > 3}
    for name in ("u2netp", "u2net", "isnet-anime", "big-lama", "lama-onnx", "sam2.1-hiera-tiny"):
        assert name in rows, out
    assert " ok " in rows["u2netp"] and "bundled" in rows["u2netp"]
    assert "missing" in rows["isnet-anime"]
    assert str(weights.cache_dir()) in out


def test_cli_download_from_local_server(monkeypatch: pytest.MonkeyPatch, server: Server) -> None:
    spec = _register(monkeypatch, _spec("cli-dl-test", (server.put("w.bin", PAYLOAD),)))
    code, out, err = _cli("weights", "download", spec.name)
    assert code == 0, err
    path = weights.cache_dir() / spec.filename
    assert str(path) in out and "download" in out
    assert path.read_bytes() == PAYLOAD
    code, out, _ = _cli("weights", "download", spec.name)  # already there: no second request
    assert code == 0 and "cache" in out and server.requests == ["/w.bin"]


def test_cli_download_offline_exits_5() -> None:
    code, out, err = _cli("weights", "download", "isnet-anime", env={"CLEANPLATE_OFFLINE": "1"})
    assert code == 5
    errors = _error_lines(err)
    assert len(errors) == 1, err
    assert "isnet-anime.onnx" in errors[0] and weights.REGISTRY["isnet-anime"].urls[0] in errors[0]
    assert "Traceback" not in out + err
    assert _files(weights.cache_dir()) == []


def test_cli_verify_exit_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _register(monkeypatch, _spec("cli-verify-test"))
    code, out, _ = _cli("weights", "verify")
    assert code == 0 and "missing" not in out and f"0 here, {len(weights.list_specs()) - 1} not" in out  # optional: counted
    weights.cache_dir().mkdir(parents=True)
    path = weights.cache_dir() / spec.filename
    path.write_bytes(PAYLOAD)
    code, out, _ = _cli("weights", "verify", spec.name, "u2netp")
    assert code == 0 and out.count("ok") == 2
    path.write_bytes(OTHER)
    code, out, err = _cli("weights", "verify")
    assert code == 5
    line = next(ln for ln in out.splitlines() if spec.name in ln)
    assert "corrupt" in line and str(path) in line
    assert "Traceback" not in out + err


def test_cli_verify_unknown_name_exits_5() -> None:
    code, _, err = _cli("weights", "verify", "nope")
    assert code == 5 and len(_error_lines(err)) == 1 and "unknown weights 'nope'" in err


# --- hashed once, cached while unchanged; no unverified downloads -------------------------------

def _count_hashing(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every real read-and-hash of a file from now on (the cache's misses)."""
    from cleanplate import hashes

    seen: list[str] = []
    real = hashes.file_digest

    def counting(path: Path, algo: str = "sha256") -> str:
        seen.append(f"{algo}:{Path(path).name}")
        return real(path, algo)

    monkeypatch.setattr(hashes, "file_digest", counting)
    return seen


def test_each_load_hashes_the_file_once_and_the_next_load_not_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    from cleanplate import hashes

    spec = _register(monkeypatch, _spec("once-test"))
    weights.cache_dir().mkdir(parents=True)
    (weights.cache_dir() / spec.filename).write_bytes(PAYLOAD)
    seen = _count_hashing(monkeypatch)
    use = weights.resolve(spec.name)
    assert use.sha256 == _sha(PAYLOAD) and seen == ["sha256:once-test.bin"]  # checked and recorded: one hash
    assert weights.resolve(spec.name).sha256 == _sha(PAYLOAD)
    assert len(seen) == 2  # just written (racily clean): not trusted from the cache yet
    monkeypatch.setattr(hashes, "RACY_NS", 0)
    weights.resolve(spec.name)
    assert len(seen) == 3 and weights.hash_cache_path().is_file()
    assert weights.resolve(spec.name).sha256 == _sha(PAYLOAD) and len(seen) == 3  # from the cache
    assert weights.verify([spec.name])[0][1] == "ok" and len(seen) == 3


@pytest.mark.parametrize("change", ["same-size-same-mtime", "truncated", "replaced"])
def test_a_cached_hash_is_not_trusted_after_the_file_changes(monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    import time

    from cleanplate import hashes

    monkeypatch.setattr(hashes, "RACY_NS", 0)
    spec = _register(monkeypatch, _spec("tamper-test", size=None))  # sha256 only: the hash must catch it
    weights.cache_dir().mkdir(parents=True)
    path = weights.cache_dir() / spec.filename
    path.write_bytes(PAYLOAD)
    time.sleep(0.05)  # the change below happens in a later clock tick
    assert weights.resolve(spec.name).sha256 == _sha(PAYLOAD)
    assert any(k.endswith(str(path.resolve())) for k in json.loads(weights.hash_cache_path().read_text()))
    st = path.stat()
    if change == "same-size-same-mtime":  # tampered in place, timestamps put back
        with open(path, "r+b") as fh:
            fh.write(b"\xff" * 16)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    elif change == "truncated":
        with open(path, "r+b") as fh:
            fh.truncate(len(PAYLOAD) // 2)
    else:
        tmp = path.with_name("other")
        tmp.write_bytes(OTHER)
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(tmp, path)
    seen = _count_hashing(monkeypatch)
    with pytest.raises(WeightsError, match="corrupt"):
        weights.resolve(spec.name)
    assert seen == ["sha256:tamper-test.bin"]  # hashed again, not taken from the cache


def test_an_entry_without_checksum_is_refused_at_download(monkeypatch: pytest.MonkeyPatch, server: Server) -> None:
    spec = _register(monkeypatch, _spec("nosum-test", (server.put("w.bin", PAYLOAD),), sha256=None, md5=None))
    with pytest.raises(WeightsError) as info:
        weights.resolve(spec.name)
    msg = str(info.value)
    _one_line(msg)
    assert "no published checksum" in msg and weights.ALLOW_UNVERIFIED_ENV in msg
    assert server.requests == [] and _files(weights.cache_dir()) == []  # nothing fetched, nothing written
    monkeypatch.setenv(weights.ALLOW_UNVERIFIED_ENV, "1")  # the explicit override
    use = weights.resolve(spec.name)
    assert use.source == "download" and Path(use.path).read_bytes() == PAYLOAD and use.sha256 == _sha(PAYLOAD)


def test_every_downloadable_registry_entry_has_a_checksum_and_size() -> None:
    import cleanplate.dataset.features  # noqa: F401 - registers its entries
    import cleanplate.fill.lama  # noqa: F401
    import cleanplate.segment.sam2  # noqa: F401

    files = [s for s in weights.list_specs() if s.urls]
    assert {"lama-onnx", "big-lama", "u2net", "u2netp"} <= {s.name for s in files}
    for spec in files:
        assert spec.sha256 or spec.md5, spec.name
        assert spec.size, spec.name
    lama = weights.get_spec("lama-onnx")
    assert lama.sha256 is not None and len(lama.sha256) == 64 and lama.size == 208044816
