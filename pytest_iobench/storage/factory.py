"""Turns the effective settings into storages: which (storage, library) pairs run, where they
work, the embedded S3 endpoint, and cleaning up what the session wrote.

Layout under the root (--iobench-root: a directory, or a bucket/prefix; ``StorageFactory.root``):
    iobench-run-<run id>/<storage id>/...   scratch space of one session (and xdist worker),
                                            deleted at the end
    iobench-datasets/...                    generated datasets, kept for reuse by later runs
    <data_folder>/...                       DLIO's own datasets, read there with --iobench-adopt
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from ..settings import Settings, SettingsError
from . import interrupts, stale
from .base import Storage, join_key
from .endpoint import EMBEDDED_BUCKET, EmbeddedS3, abort_uploads, check_endpoint, open_uploads
from .errors import StorageTimeout, StorageUnsupported
from .names import BUCKET_KINDS, DEFAULT_BACKOFF, DEFAULT_OP_TIMEOUT, DEFAULT_RETRIES, LIBRARIES
from .registry import StorageSpec, library_installed, missing_reason, open_storage
from .retry import RetryPolicy
from .s3common import S3Endpoint, endpoint_limit

DATASETS_AREA = "iobench-datasets"
#: where each area of a (kind, library) is: the session's scratch space, the datasets, the root
AREAS = ("scratch", "datasets", "root")


@dataclass(frozen=True)
class StorageParam:
    """One (storage, library) pair to parametrize, with the reason to skip it if any."""

    kind: str
    library: str
    skip: str | None = None

    @property
    def id(self) -> str:
        return f"{self.kind}-{self.library}"


def plan_storages(settings: Settings) -> list[StorageParam]:
    """The (storage, library) pairs the settings ask for, in a stable order.

    Named libraries must each serve at least one of the chosen storages, and each storage
    must be served by one of them: a library that would silently run nothing is an error."""
    explicit = settings.libraries
    params = []
    for kind in settings.storage:
        libraries = [lib for lib in LIBRARIES[kind] if (lib in explicit if explicit else library_installed(lib))]
        if not libraries and not explicit and kind == "ais":  # its one library is optional: skip saying so
            libraries = list(LIBRARIES[kind])
        if not libraries and explicit:
            raise SettingsError(
                f"--iobench-libraries: {', '.join(explicit)} cannot reach the {kind} storage; "
                f"valid for {kind}: {', '.join(LIBRARIES[kind])}"
            )
        if not libraries:
            raise SettingsError(
                f"--iobench-storage: no installed library reaches the {kind} storage: "
                f"{'; '.join(missing_reason(lib) for lib in LIBRARIES[kind])}"
            )
        for lib in libraries:
            cannot = kind == "s3" and endpoint_limit(lib, settings.s3_endpoint)
            if cannot and explicit:
                raise SettingsError(f"--iobench-libraries: {cannot}")
            missing = None if library_installed(lib) else missing_reason(lib)
            if kind == "ais" and not missing and not settings.ais_endpoint:
                cannot = NO_AIS_ENDPOINT
            params.append(StorageParam(kind, lib, cannot or missing))
    unused = [lib for lib in explicit or () if not any(lib in LIBRARIES[kind] for kind in settings.storage)]
    if unused:
        serving = "; ".join(f"{kind}: {', '.join(LIBRARIES[kind])}" for kind in settings.storage)
        raise SettingsError(
            f"--iobench-libraries: {', '.join(unused)} {'serves' if len(unused) == 1 else 'serve'} none of the "
            f"chosen storages ({', '.join(settings.storage)}); the libraries for them: {serving}"
        )
    return params


#: why the ais cases skip without an endpoint: no AIStore runs here, and none is faked
NO_AIS_ENDPOINT = ("no AIStore endpoint given (--iobench-ais-endpoint or AIS_ENDPOINT); the ais storage runs "
                   "only against a real AIStore cluster")


def split_s3_root(settings: Settings) -> tuple[str, str]:
    """(bucket, prefix) from --iobench-bucket, or from an s3:// --iobench-root."""
    text = settings.bucket
    root = settings.root or ""
    if root.startswith("s3://"):
        text = root[len("s3://"):]
    if not text:
        return "", ""
    bucket, _, prefix = text.strip("/").partition("/")
    return bucket, prefix.strip("/")


def _s3_root_option(settings: Settings) -> str:
    return "--iobench-root" if (settings.root or "").startswith("s3://") else "--iobench-bucket"


#: what S3 (and moto) accept for a new bucket: 3-63 lowercase letters, digits, '.' and '-'
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def check_new_bucket_name(bucket: str, option: str) -> None:
    """The embedded endpoint creates the bucket it is given: the name must be one S3 takes."""
    if not _BUCKET_NAME.fullmatch(bucket) or ".." in bucket or re.fullmatch(r"[0-9.]+", bucket):
        raise SettingsError(
            f"{option}: {bucket!r} is not a bucket name the embedded S3 endpoint can create; a bucket "
            "name is 3-63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit"
        )


def check_local_root(root: str) -> None:
    """--iobench-root for the local and direct storages: a directory that exists (created if
    need be) and takes new files; one line otherwise, before any test runs."""
    if os.path.exists(root) and not os.path.isdir(root):
        raise SettingsError(f"--iobench-root: {root} exists and is not a directory")
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as exc:
        raise SettingsError(f"--iobench-root: cannot create the directory {root}: "
                            f"{exc.strerror or exc}; give a directory you can write to") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".iobench-write-probe-", dir=root)
    except OSError as exc:
        raise SettingsError(f"--iobench-root: cannot create files in {root}: "
                            f"{exc.strerror or exc}; give a directory you can write to") from None
    os.close(fd)
    os.unlink(probe)


def configured_endpoint(settings: Settings) -> S3Endpoint | None:
    """The endpoint the settings name, or None for the embedded one."""
    if not settings.s3_endpoint:
        return None
    return S3Endpoint(
        url=settings.s3_endpoint,
        access_key=settings.s3_access_key or "",
        secret_key=settings.s3_secret_key or "",
        region=settings.s3_region,
    )


def check_settings(settings: Settings) -> None:
    """Everything about the storage settings that can be known wrong before the session runs."""
    plan_storages(settings)
    if "ais" not in settings.storage:
        given, source = settings.ais_endpoint, settings.sources.get("ais-endpoint", "default")
        if given and not source.startswith(("env", "default")):
            raise SettingsError(f"--iobench-ais-endpoint ({source}): {given} is for the ais storage, and the session "
                                f"does not run it (--iobench-storage={','.join(settings.storage)}); add ais to "
                                "--iobench-storage, or drop it")
    elif settings.ais_endpoint and not split_s3_root(settings)[0]:
        raise SettingsError(f"--iobench-bucket: the ais storage on {settings.ais_endpoint} needs a bucket "
                            "there; name one with --iobench-bucket NAME (an ais:// bucket that exists)")
    if "s3" not in settings.storage:
        # an S3 setting given for a session that runs no S3 storage would be ignored silently
        # (the bucket and an s3:// root also name where the ais storage works)
        root = settings.root or ""
        for name, given in (("s3-endpoint", settings.s3_endpoint), ("bucket", settings.bucket),
                            ("root", root if root.startswith("s3://") else "")):
            source = settings.sources.get(name, "default")
            if name != "s3-endpoint" and "ais" in settings.storage:
                continue
            if given and not source.startswith(("env", "default")):
                raise SettingsError(
                    f"--iobench-{name} ({source}): {given} is an S3 location, and the session runs no S3 storage "
                    f"(--iobench-storage={','.join(settings.storage)}); add s3 to --iobench-storage, or drop it")
    if "s3" in settings.storage:
        endpoint = configured_endpoint(settings)
        bucket, _ = split_s3_root(settings)
        if endpoint is not None:
            if not bucket:
                raise SettingsError(
                    f"--iobench-bucket: an S3 endpoint ({endpoint.url}) is given but no bucket; "
                    "name one with --iobench-bucket NAME or --iobench-root s3://NAME/prefix"
                )
            retries = settings.get("retries")
            check_endpoint(endpoint, bucket, retry=RetryPolicy(DEFAULT_RETRIES if retries is None else retries,
                                                               settings.get("backoff") or DEFAULT_BACKOFF))
        elif bucket:
            check_new_bucket_name(bucket, _s3_root_option(settings))
    root = settings.root or ""
    if root and not root.startswith("s3://") and {"local", "direct"} & set(settings.storage):
        check_local_root(os.path.abspath(root))


def new_run_id(worker: str | None = None) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}" + (f"-{worker}" if worker else "")


class StorageFactory:
    """Opens and caches the storages of one session and cleans up after it."""

    def __init__(self, settings: Settings, default_root: str, run_id: str):
        self.settings = settings
        self.run_id = run_id
        root = settings.root
        self.local_root = os.path.abspath(root if root and not root.startswith("s3://") else default_root)
        self.scratch = f"iobench-run-{run_id}"
        self._embedded: EmbeddedS3 | None = None
        self._endpoint: S3Endpoint | None = configured_endpoint(settings)
        self._bucket, self._prefix = split_s3_root(settings)
        self._open: dict[tuple[str, str, str], Storage] = {}
        self._lock = threading.Lock()
        self._op_timeout = settings.get("op-timeout") or DEFAULT_OP_TIMEOUT
        retries = settings.get("retries")
        self._retries: int = DEFAULT_RETRIES if retries is None else int(retries)
        self._backoff: float = float(settings.get("backoff") or DEFAULT_BACKOFF)
        #: the roots ("local", "s3") this session has claimed its scratch area in (and looked
        #: for what killed sessions left): the S3 root's storage that holds the owner record
        self._claimed: dict[str, Storage | None] = {}
        self._renewer: threading.Thread | None = None
        self._ending = threading.Event()
        #: what earlier sessions left and this one removed (reported in the terminal)
        self.removed_stale: list[str] = []
        #: multipart uploads of this session's scratch area left open and aborted at its end
        self.aborted_uploads = 0
        self.problems: list[str] = []

    # -- where things are -------------------------------------------------------------------
    def endpoint(self) -> S3Endpoint:
        """The S3 endpoint; the embedded one is started on first use."""
        with self._lock:
            if self._endpoint is None:
                # the embedded server creates the bucket the settings name (and works under
                # their prefix), as a given endpoint would be used
                self._bucket = self._bucket or EMBEDDED_BUCKET
                self._embedded = EmbeddedS3(bucket=self._bucket, region=self.settings.s3_region)
                self._endpoint = self._embedded.start()
            return self._endpoint

    @property
    def embedded(self) -> bool:
        return self._embedded is not None

    def spec(self, kind: str, library: str, area: str = "scratch") -> StorageSpec:
        """Where (kind, library) works: its scratch space, the shared datasets area, or the root
        both are under (``AREAS``)."""
        if area not in AREAS:
            raise ValueError(f"area {area!r}; valid: {', '.join(AREAS)}")
        sub = {"scratch": join_key(self.scratch, f"{kind}-{library}"), "datasets": DATASETS_AREA, "root": ""}[area]
        if kind == "ais":
            return StorageSpec(kind, library, bucket=self._bucket, prefix=join_key(self._prefix, sub),
                               endpoint_url=self.settings.ais_endpoint or "", op_timeout=self._op_timeout,
                               retries=self._retries, backoff=self._backoff)
        if kind == "s3":
            endpoint = self.endpoint()
            return StorageSpec(kind, library, bucket=self._bucket, prefix=join_key(self._prefix, sub),
                               endpoint_url=endpoint.url, region=endpoint.region,
                               op_timeout=self._op_timeout, retries=self._retries, backoff=self._backoff)
        root = os.path.join(self.local_root, *sub.split("/")) if sub else self.local_root
        return StorageSpec(kind, library, root=root, op_timeout=self._op_timeout)

    def get(self, kind: str, library: str, area: str = "scratch") -> Storage:
        """The storage for (kind, library), opened once per session and area.

        Raises StorageUnsupported (a skip reason) when it cannot run here."""
        cache_key = (kind, library, area)
        if cache_key not in self._open:
            spec = self.spec(kind, library, area)
            endpoint = self.endpoint() if kind == "s3" else None
            self._open[cache_key] = open_storage(spec, endpoint)
            if kind != "ais":  # an AIStore bucket is the user's: nothing of ours to sweep there
                self._claim("s3" if kind == "s3" else "local", library)
        return self._open[cache_key]

    # -- what killed sessions left -------------------------------------------------------------
    def _claim(self, root_kind: str, library: str) -> None:
        """Once per root: remove the scratch areas and temporary files of sessions that are
        gone, and write this session's owner record (storage/stale.py). Not on the embedded
        endpoint: nothing there outlives its session."""
        if root_kind in self._claimed:
            return
        self._claimed[root_kind] = None
        try:
            if root_kind == "local":
                self.removed_stale += stale.sweep_local(self.local_root, keep=self.scratch)
                stale.claim_local(self.local_root, self.scratch)
            elif not self.embedded:
                endpoint, timeout = self.endpoint(), self._op_timeout

                def under(prefix: str) -> str:
                    return join_key(self._prefix, prefix)

                def upload_keys(prefix: str) -> list[str]:
                    names = [key for key, _ in open_uploads(endpoint, self._bucket, under(prefix), timeout)]
                    return [name[len(self._prefix) + 1:] if self._prefix else name for name in names]

                root = self.root("s3", library)
                self.removed_stale += stale.sweep_s3(
                    root, keep=self.scratch, upload_keys=upload_keys,
                    abort_uploads=lambda prefix: abort_uploads(endpoint, self._bucket, under(prefix), timeout))
                root.put(self._owner_key, stale.Owner.me().to_bytes())
                self._claimed[root_kind] = root
        except Exception as exc:  # a failed sweep must not fail the test that opened the storage
            self.problems.append(f"{root_kind} root: could not look for what killed sessions left: {exc}")
        if self._renewer is None:
            self._renewer = threading.Thread(target=self._renew, name="iobench-owner", daemon=True)
            self._renewer.start()

    @property
    def _owner_key(self) -> str:
        return stale.owner_name(self.scratch)

    def _renew(self) -> None:
        """Renew the owner records while the session runs: a session on another host tells a
        running session from a dead one by their expiry."""
        while not self._ending.wait(stale.RENEW_EVERY):
            for root_kind, root in list(self._claimed.items()):
                try:
                    if root_kind == "local":
                        stale.claim_local(self.local_root, self.scratch)
                    elif root is not None:
                        root.put(self._owner_key, stale.Owner.me().to_bytes())
                except Exception:
                    pass  # the next renewal tries again; a lapsed record only lets the area be removed

    def root(self, kind: str, library: str) -> Storage:
        """The storage root (--iobench-root, or the bucket and its prefix) through ``library``:
        where the scratch and datasets areas are, and where DLIO writes its datasets."""
        return self.get(kind, library, area="root")

    def at(self, storage: Storage, prefix: str) -> Storage:
        """Another storage of the same kind and library rooted at ``prefix`` under ``storage``."""
        spec = storage.spec
        if not isinstance(spec, StorageSpec):
            raise ValueError(f"{storage.uri('')} was not opened by this session's storages")
        if spec.kind in BUCKET_KINDS:
            spec = replace(spec, prefix=join_key(spec.prefix, prefix))
        else:
            spec = replace(spec, root=os.path.join(spec.root, *prefix.split("/")))
        return open_storage(spec, self.endpoint() if spec.kind == "s3" else None)

    def environ(self) -> dict[str, str]:
        """Environment a child process (an MPI rank) needs to open these storages."""
        return self._endpoint.environ() if self._endpoint is not None else {}

    # -- the end ------------------------------------------------------------------------------
    def cleanup(self) -> list[str]:
        """Delete this session's scratch space; stop the embedded endpoint. Returns problems."""
        self._ending.set()
        problems, self.problems = self.problems, []
        s3_answers, s3_clean = True, True
        for (kind, library, area), storage in list(self._open.items()):
            if area != "scratch" or kind not in BUCKET_KINDS or not s3_answers:
                continue
            try:
                storage.delete_prefix("")
            except Exception as exc:  # report, keep cleaning the rest
                problems.append(f"{kind}-{library}: cleanup failed: {exc}; the next session removes the rest")
                # an endpoint that did not answer in time is not asked again (each would wait)
                s3_answers, s3_clean = not isinstance(exc, StorageTimeout), False
        claimed_s3 = self._claimed.get("s3")
        if claimed_s3 is not None and self._endpoint is not None and s3_answers:
            try:  # our writers abort their uploads; one a writer never ended is aborted here
                timeout = min(self._op_timeout, interrupts.GRACE) if interrupts.interrupted() else self._op_timeout
                self.aborted_uploads += abort_uploads(self._endpoint, self._bucket,
                                                      join_key(self._prefix, self.scratch) + "/", timeout=timeout)
                if s3_clean:  # last: an area half removed is still known by its record
                    claimed_s3.delete(self._owner_key)
            except Exception as exc:
                problems.append(f"s3 scratch {self.scratch}: cleanup failed: {exc}; the next session removes the rest")
        for storage in self._open.values():
            try:
                storage.close()
            except Exception:
                pass
        self._open.clear()
        if "local" in self._claimed:  # writers an interrupt left open, outside the scratch area
            stale.remove_own_temps()
        # Everything under this run's directory is this session's, including the temporary
        # files of writers that died without aborting (which list() does not show).
        scratch_dir: str | None = os.path.join(self.local_root, self.scratch)
        try:
            shutil.rmtree(os.path.join(self.local_root, self.scratch))
        except FileNotFoundError:
            pass
        except OSError as exc:
            problems.append(f"local scratch {scratch_dir}: cleanup failed: {exc.strerror or exc}")
            scratch_dir = None
        if scratch_dir is not None:
            try:  # last: an area half removed is still known by its record
                os.unlink(os.path.join(self.local_root, stale.owner_name(self.scratch)))
            except FileNotFoundError:
                pass
        if self._embedded is not None:
            self._embedded.stop()
        return problems


__all__ = ["StorageFactory", "StorageParam", "StorageUnsupported", "check_settings", "plan_storages"]
