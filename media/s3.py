"""Recordings in an S3-compatible bucket (AWS S3, MinIO, Ceph, Garage).

A segment being recorded is written to a local spool file first, exactly as on local disk (so
a killed process loses at most the last Ogg page, about a second). While it grows, every full
part (`part_size`, at least S3's 5 MiB) goes up as a part of a multipart upload; when the
segment closes, the rest goes up and the upload is completed, and the spool file is removed.
A process that died leaves its spool files behind: the next start uploads them.

Each spool file being recorded is locked (flock) by its uploader, so a node starting beside
another one on the same spool folder never uploads a file that is still being written.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from media.oggopus import written_seconds
from media.storage import READ_CHUNK, LocalStorage, StorageUnavailable, check_key

log = logging.getLogger(__name__)

MIN_PART = 5 * 1024 * 1024
"""S3's smallest part (but the last) of a multipart upload."""
PART_SIZE = 8 * 1024 * 1024
RETRY_S = (1.0, 2.0, 5.0, 10.0, 30.0)
"""Waits between tries of a failed upload; after the last, the spool stays for the next start."""


@dataclass(frozen=True)
class S3Location:
    """`s3://bucket/prefix` of RECORDINGS_URL."""

    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, url: str) -> S3Location:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError("use s3://bucket or s3://bucket/prefix")
        prefix = parts.path.strip("/")
        return cls(parts.netloc, f"{prefix}/" if prefix else "")


@dataclass(frozen=True)
class S3Credentials:
    """Where the S3 API is and who we are; empty fields fall back to botocore's usual chain."""

    endpoint_url: str = ""
    region: str = "us-east-1"
    access_key_id: str = ""
    secret_access_key: str = ""


def _not_found(exc: ClientError) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}


class _Upload:
    """One spool file on its way into the bucket, as it grows and when it closes."""

    def __init__(self, storage: S3Storage, key: str, path: Path) -> None:
        self.storage = storage
        self.key = key
        self.path = path
        self.closed = False
        self.cancelled = False
        self.sent = 0
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._fd)
            raise
        self.task = asyncio.create_task(self._run(), name=f"upload-{key}")

    def poke(self, closed: bool) -> None:
        self.closed = self.closed or closed
        self._wake.set()

    async def _run(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self.cancelled:
                    await self._abort()
                    return
                closed = self.closed
                try:
                    await self._send_full_parts()
                    if closed:
                        await self._finish()
                        return
                except (BotoCoreError, ClientError, OSError) as exc:
                    if isinstance(exc, ClientError) and _not_found(exc):
                        log.info("the upload of %s was aborted (interview deleted)", self.key)
                        return
                    if closed:
                        await self._finish_with_retries(exc)
                        return
                    log.warning("a part of %s did not upload (%s); trying again", self.key, exc)
        finally:
            os.close(self._fd)
            self.storage._uploads.pop(self.key, None)

    async def _finish_with_retries(self, error: Exception) -> None:
        for wait in RETRY_S:
            log.warning("%s did not upload (%s); again in %.0f s", self.key, error, wait)
            await asyncio.sleep(wait)
            if self.cancelled:
                await self._abort()
                return
            try:
                await self._send_full_parts()
                await self._finish()
                return
            except (BotoCoreError, ClientError, OSError) as exc:
                error = exc
        log.error("%s stays in the spool folder until the next start: %s", self.key, error)

    def _size(self) -> int:
        return os.fstat(self._fd).st_size

    async def _read(self, offset: int, length: int) -> bytes:
        return await asyncio.to_thread(os.pread, self._fd, length, offset)

    async def _send_full_parts(self) -> None:
        # The Ogg writer only appends: every byte below the file's size is final.
        client = self.storage.client
        while self._size() - self.sent >= self.storage.part_size:
            if self.upload_id is None:
                created = await client.create_multipart_upload(
                    Bucket=self.storage.location.bucket,
                    Key=self.storage.object_key(self.key),
                    ContentType="audio/ogg",
                )
                self.upload_id = str(created["UploadId"])
            await self._send_part(await self._read(self.sent, self.storage.part_size))

    async def _send_part(self, body: bytes) -> None:
        number = len(self.parts) + 1
        answer = await self.storage.client.upload_part(
            Bucket=self.storage.location.bucket,
            Key=self.storage.object_key(self.key),
            UploadId=self.upload_id,
            PartNumber=number,
            Body=body,
        )
        self.parts.append({"PartNumber": number, "ETag": answer["ETag"]})
        self.sent += len(body)

    async def _finish(self) -> None:
        client, bucket = self.storage.client, self.storage.location.bucket
        rest = await self._read(self.sent, self._size() - self.sent)
        if self.upload_id is None:
            await client.put_object(
                Bucket=bucket,
                Key=self.storage.object_key(self.key),
                Body=rest,
                ContentType="audio/ogg",
            )
        else:
            if rest:
                await self._send_part(rest)
            await client.complete_multipart_upload(
                Bucket=bucket,
                Key=self.storage.object_key(self.key),
                UploadId=self.upload_id,
                MultipartUpload={"Parts": self.parts},
            )
        if not self.cancelled:
            self.path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self.path.parent.rmdir()  # only when empty
        self.storage.uploaded += 1

    async def _abort(self) -> None:
        if self.upload_id is not None:
            with contextlib.suppress(BotoCoreError, ClientError):
                await self.storage.client.abort_multipart_upload(
                    Bucket=self.storage.location.bucket,
                    Key=self.storage.object_key(self.key),
                    UploadId=self.upload_id,
                )


class S3Storage:
    """Segments spooled under `spool` while recorded, kept in the bucket afterwards."""

    def __init__(
        self,
        location: S3Location,
        spool: Path,
        credentials: S3Credentials,
        part_size: int = PART_SIZE,
        known: Callable[[str, float], Awaitable[bool]] | None = None,
    ) -> None:
        """`known(key, seconds)` settles a segment a dead process left (`seconds`: the audio
        its file holds) and tells whether it still belongs to a recording: given it, `start`
        uploads those spools (and drops those of deleted or purged recordings); without it (a
        one-off command), spools are left alone."""
        if part_size < MIN_PART:
            raise ValueError("S3 parts must be at least 5 MiB")
        self.location = location
        self.spool = LocalStorage(spool)
        self.credentials = credentials
        self.part_size = part_size
        self.known = known
        self.uploaded = 0
        """Segments this process has put in the bucket (spools recovered included)."""
        self._client: Any = None
        self._stack = contextlib.AsyncExitStack()
        self._uploads: dict[str, _Upload] = {}
        self._recovery: asyncio.Task[None] | None = None

    @property
    def client(self) -> Any:
        if self._client is None:
            raise StorageUnavailable("the recording storage is not started")
        return self._client

    def object_key(self, key: str) -> str:
        return self.location.prefix + check_key(key)

    async def start(self) -> None:
        creds = self.credentials
        config = AioConfig(
            # Path-style addressing and checksums only where required: what MinIO, Ceph and
            # Garage accept as well as AWS.
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
        )
        self._client = await self._stack.enter_async_context(
            get_session().create_client(
                "s3",
                endpoint_url=creds.endpoint_url or None,
                region_name=creds.region or None,
                aws_access_key_id=creds.access_key_id or None,
                aws_secret_access_key=creds.secret_access_key or None,
                config=config,
            )
        )
        if self.known is not None:
            self._recovery = asyncio.create_task(
                self._upload_left_spools(self.known), name="spool-recovery"
            )

    async def close(self) -> None:
        """Wait (up to 30 s) for uploads in flight, then let go of the client."""
        if self._recovery is not None:
            await asyncio.wait([self._recovery], timeout=30)
        await self.idle()
        for upload in list(self._uploads.values()):
            upload.task.cancel()
        await self._stack.aclose()
        self._client = None

    async def idle(self) -> None:
        """Wait (up to 30 s) until every closed segment is uploaded (what is still being
        recorded stays in the spool)."""
        if self._recovery is not None:
            await asyncio.wait([self._recovery], timeout=30)
        tasks = [u.task for u in self._uploads.values() if u.closed or u.cancelled]
        if tasks:
            await asyncio.wait(tasks, timeout=30)

    def segment_path(self, interview_id: int, role: str, segment: int) -> Path:
        return self.spool.segment_path(interview_id, role, segment)

    def relative(self, path: Path) -> str:
        return self.spool.relative(path)

    def segment_changed(self, path: Path, closed: bool) -> None:
        key = self.relative(path)
        upload = self._uploads.get(key)
        if upload is None:
            if closed and not path.exists():
                return
            try:
                upload = self._uploads[key] = _Upload(self, key, path)
            except OSError as exc:
                log.error("cannot upload %s: %s", key, exc)
                return
        upload.poke(closed)

    async def _upload_left_spools(self, known: Callable[[str, float], Awaitable[bool]]) -> None:
        """Spool files of a process that died (none of this one is recording yet)."""
        left = sorted(self.spool.root.glob("interview-*/*.opus"))
        found = dropped = 0
        for path in left:
            key = self.relative(path)
            if key in self._uploads:
                continue
            try:
                check_key(key)
                upload = _Upload(self, key, path)
            except (OSError, ValueError):
                continue  # recorded by a live process on this spool folder, or not ours
            self._uploads[key] = upload
            await self._abort_stale(key)
            try:
                wanted = await known(key, await asyncio.to_thread(written_seconds, path))
            except Exception as exc:  # the database is down: upload, deleting is for later
                log.warning("could not check %s against the database: %s", key, exc)
                wanted = True
            if not wanted:  # its interview was deleted (or purged) while this node was down
                upload.cancelled = True
                path.unlink(missing_ok=True)
                dropped += 1
            else:
                found += 1
            upload.poke(closed=True)
            await asyncio.wait([upload.task])
        if found or dropped:
            log.info(
                "spool folder: %d segments left by an earlier run uploaded, %d of deleted "
                "recordings dropped",
                found,
                dropped,
            )

    async def _abort_stale(self, key: str) -> None:
        """Multipart uploads a dead process began for this key (their parts cost storage)."""
        try:
            listed = await self.client.list_multipart_uploads(
                Bucket=self.location.bucket, Prefix=self.object_key(key)
            )
            for upload in listed.get("Uploads", []):
                if upload["Key"] == self.object_key(key):
                    await self.client.abort_multipart_upload(
                        Bucket=self.location.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
        except (BotoCoreError, ClientError) as exc:
            log.warning("could not list unfinished uploads of %s: %s", key, exc)

    async def size(self, key: str) -> int | None:
        local = await self.spool.size(key)
        if local is not None:
            return local  # recorded (or being uploaded) by this node
        try:
            head = await self.client.head_object(
                Bucket=self.location.bucket, Key=self.object_key(key)
            )
        except ClientError as exc:
            if _not_found(exc):
                return None
            raise StorageUnavailable(str(exc)) from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(str(exc)) from exc
        return int(head["ContentLength"])

    async def read(self, key: str, start: int, length: int) -> AsyncIterator[bytes]:
        if length <= 0:
            return
        if await self.spool.size(key) is not None:
            try:
                async for chunk in self.spool.read(key, start, length):
                    yield chunk
                return
            except FileNotFoundError:
                pass  # uploaded and removed just now: it is in the bucket
        try:
            answer = await self.client.get_object(
                Bucket=self.location.bucket,
                Key=self.object_key(key),
                Range=f"bytes={start}-{start + length - 1}",
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable(str(exc)) from exc
        async with answer["Body"] as body:
            while chunk := await body.read(READ_CHUNK):
                yield chunk

    async def delete(self, key: str) -> None:
        upload = self._uploads.get(key)
        if upload is not None:
            upload.cancelled = True
            upload.poke(closed=True)
        await self.spool.delete(key)
        try:
            await self.client.delete_object(Bucket=self.location.bucket, Key=self.object_key(key))
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable(str(exc)) from exc

    async def delete_interview(self, interview_id: int) -> None:
        folder = f"interview-{interview_id}/"
        for key, upload in list(self._uploads.items()):
            if key.startswith(folder):
                upload.cancelled = True
                upload.poke(closed=True)
        await self.spool.delete_interview(interview_id)
        bucket, prefix = self.location.bucket, self.location.prefix + folder
        try:
            # Unfinished uploads first: a node still recording this interview then fails its
            # next part instead of completing an object after the delete.
            listed = await self.client.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
            for upload_info in listed.get("Uploads", []):
                await self.client.abort_multipart_upload(
                    Bucket=bucket, Key=upload_info["Key"], UploadId=upload_info["UploadId"]
                )
            paginator = self.client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if objects:
                    await self.client.delete_objects(
                        Bucket=bucket, Delete={"Objects": objects, "Quiet": True}
                    )
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable(str(exc)) from exc
