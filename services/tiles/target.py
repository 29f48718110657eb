"""Where a tileset is written: a local folder, or a prefix of S3-compatible object storage (fsspec/s3fs).

Object storage has no server in front that negotiates encodings or checks keys, so each object carries
its own headers: JSON is stored gzip-compressed (Content-Encoding: gzip) with Cache-Control no-cache,
since a tree must be revalidated after a rebuild; glb content is model/gltf-binary with a short max-age,
since a rebuilt tile keeps its URL (content URLs are stable per quad).
"""
from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

from cim_core.errors import InputError
from cim_core.settings import get_settings

JSON_TYPE = "application/json"
GLB_TYPE = "model/gltf-binary"
JSON_CACHE_CONTROL = "no-cache"
CONTENT_CACHE_CONTROL = "public, max-age=60"
# Content is uploaded in batches of concurrent PUTs of about this many bytes (bounded memory).
UPLOAD_BATCH_BYTES = 64 * 2**20


class Folder:
    """A tileset in a local folder: a file is replaced atomically and only when its bytes change."""

    remote = False

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def __str__(self) -> str:
        return str(self.root)

    def read(self, rel: str) -> bytes | None:
        try:
            return (self.root / rel).read_bytes()
        except FileNotFoundError:
            return None

    def write(self, rel: str, data: bytes) -> bool:
        path = self.root / rel
        if path.exists() and path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # readers see the old file or the new one, never half of one
        return True

    def size(self, rel: str) -> int:
        return (self.root / rel).stat().st_size

    def files(self, folder: str) -> list[str]:
        base = self.root / folder
        if not base.exists():
            return []
        return [p.relative_to(self.root).as_posix() for p in base.glob("**/*") if p.is_file()]

    def remove(self, rels: list[str]) -> None:
        for rel in rels:
            (self.root / rel).unlink()

    def remove_folder(self, folder: str) -> None:
        base = self.root / folder
        for p in sorted(base.glob("**/*"), reverse=True) if base.exists() else []:
            p.unlink() if p.is_file() else p.rmdir()

    def flush(self) -> None:
        """Nothing is held back: every write is on disk when it returns."""


class Bucket:
    """A tileset under an s3://bucket/prefix URL. One listing at the start gives every object's ETag (the
    MD5 of its body for single-part uploads), so objects whose bytes did not change are not uploaded again.
    Credentials and region come from the standard AWS environment; the endpoint from CIM_S3_ENDPOINT_URL
    (or AWS_ENDPOINT_URL)."""

    remote = True

    def __init__(self, url: str):
        import s3fs  # imported here: it pulls in aiobotocore, which every other `cim` command can do without

        self.url = url.rstrip("/")
        self.root = url.split("://", 1)[1].strip("/")
        if not self.root:
            raise InputError(f"{url}: no bucket named", hint="write s3://BUCKET/PREFIX")
        self.fs = s3fs.S3FileSystem(endpoint_url=get_settings().s3_endpoint_url, skip_instance_cache=True)
        listing = self._call(self.fs.find, self.root, detail=True)
        start = len(self.root) + 1
        self.objects = {path[start:]: (int(info["size"]), str(info.get("ETag", "")).strip('"'))
                        for path, info in listing.items()}
        self.pending: dict[str, bytes] = {}
        self.pending_bytes = 0

    def __str__(self) -> str:
        return self.url

    def _call(self, fn, *args, **kwargs):
        """A storage call; its failure (no bucket, no credentials, refused) becomes one line."""
        from botocore.exceptions import BotoCoreError

        try:
            return fn(*args, **kwargs)
        except FileNotFoundError:
            raise InputError(f"{self.url}: no such bucket", hint="create it first (`aws s3 mb`)") from None
        except (OSError, BotoCoreError, ValueError) as exc:
            first = str(exc).strip().splitlines()
            raise InputError(f"{self.url}: {type(exc).__name__}: {first[0] if first else ''}",
                             hint="check the AWS credentials, the region and CIM_S3_ENDPOINT_URL") from None

    def read(self, rel: str) -> bytes | None:
        if rel not in self.objects:
            return None
        data = self._call(self.fs.cat_file, f"{self.root}/{rel}")
        return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data

    def write(self, rel: str, data: bytes) -> bool:
        is_json = rel.endswith(".json")
        body = gzip.compress(data, 6, mtime=0) if is_json else data
        md5 = hashlib.md5(body, usedforsecurity=False).hexdigest()
        if self.objects.get(rel, (0, ""))[1] == md5:
            return False
        self.objects[rel] = (len(body), md5)
        if is_json:
            self.flush()  # a tree goes up after the content it names
            self._put({rel: body}, JSON_TYPE, JSON_CACHE_CONTROL, "gzip")
        else:
            self.pending[rel] = body
            self.pending_bytes += len(body)
            if self.pending_bytes >= UPLOAD_BATCH_BYTES:
                self.flush()
        return True

    def size(self, rel: str) -> int:
        return self.objects[rel][0]

    def files(self, folder: str) -> list[str]:
        return [rel for rel in self.objects if rel.startswith(folder + "/")]

    def remove(self, rels: list[str]) -> None:
        if not rels:
            return
        self.flush()
        self._call(self.fs.rm, [f"{self.root}/{rel}" for rel in rels])
        for rel in rels:
            self.objects.pop(rel, None)

    def remove_folder(self, folder: str) -> None:
        self.remove(self.files(folder))

    def flush(self) -> None:
        """Upload the content held back, concurrently."""
        if self.pending:
            self._put(self.pending, GLB_TYPE, CONTENT_CACHE_CONTROL)
            self.pending, self.pending_bytes = {}, 0

    def _put(self, objects: dict[str, bytes], content_type: str, cache_control: str,
             encoding: str | None = None) -> None:
        headers = {"ContentType": content_type, "CacheControl": cache_control}
        if encoding:
            headers["ContentEncoding"] = encoding
        self._call(self.fs.pipe, {f"{self.root}/{rel}": body for rel, body in objects.items()}, **headers)


def open_target(out: str | Path) -> Folder | Bucket:
    """The target of `out`: an s3:// URL, or a local folder (created)."""
    if isinstance(out, str) and "://" in out:
        if out.split("://", 1)[0] != "s3":
            raise InputError(f"{out}: tiles can be written to a local folder or an s3:// URL only",
                             hint="e.g. --out ./tiles or --out s3://bucket/city")
        return Bucket(out)
    return Folder(Path(out))
