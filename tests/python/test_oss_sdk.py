"""The vendor's own SDK proves the emulator: its V4 signer and parsers agree with ours."""

import base64
import hashlib
import os

import alibabacloud_oss_v2 as oss
import pytest

from conftest import oss_client
from stack import OSS_ACCESS_KEY_SECRET, OssEmulator

BUCKET = "sdk-bucket"


def crc64(data: bytes) -> int:
    from alibabacloud_oss_v2.crc import Crc64

    c = Crc64(0)
    c.update(data)
    return c.sum64()


def test_put_get_head_with_metadata(emulator):
    client = oss_client(emulator.endpoint)
    body = b"hello from the official SDK\n" * 100
    key = "dir/a key+with%odd=chars&ü.txt"
    put = client.put_object(oss.PutObjectRequest(
        bucket=BUCKET, key=key, body=body,
        content_type="text/plain; charset=utf-8",
        cache_control="max-age=60",
        content_disposition='attachment; filename="x.txt"',
        content_encoding="identity",
        content_md5=base64.b64encode(hashlib.md5(body).digest()).decode(),
        metadata={"owner": "alice", "Mixed-Case": "v"},
        storage_class="IA",
        tagging="team=data&env=test",
    ))
    assert put.status_code == 200
    assert put.etag == '"%s"' % hashlib.md5(body).hexdigest().upper()
    assert int(put.hash_crc64) == crc64(body)

    got = client.get_object(oss.GetObjectRequest(bucket=BUCKET, key=key))
    assert got.body.read() == body
    assert got.content_type == "text/plain; charset=utf-8"
    assert got.etag == put.etag

    head = client.head_object(oss.HeadObjectRequest(bucket=BUCKET, key=key))
    assert head.content_length == len(body)
    assert head.cache_control == "max-age=60"
    assert head.content_disposition == 'attachment; filename="x.txt"'
    assert head.storage_class == "IA"
    assert head.object_type == "Normal"
    assert head.tagging_count == 2
    assert head.metadata == {"owner": "alice", "mixed-case": "v"}
    assert int(head.hash_crc64) == crc64(body)


def test_ranged_get(emulator):
    client = oss_client(emulator.endpoint)
    body = bytes(range(256)) * 10
    client.put_object(oss.PutObjectRequest(bucket=BUCKET, key="r", body=body))
    got = client.get_object(oss.GetObjectRequest(bucket=BUCKET, key="r", range_header="bytes=10-19"))
    assert got.status_code == 206
    assert got.body.read() == body[10:20]
    assert got.content_range == f"bytes 10-19/{len(body)}"


def test_multipart_upload_list_parts_and_complete(emulator):
    client = oss_client(emulator.endpoint)
    key = "big/multi part.bin"
    parts = [os.urandom(100 * 1024), os.urandom(100 * 1024), os.urandom(1234)]
    init = client.initiate_multipart_upload(oss.InitiateMultipartUploadRequest(
        bucket=BUCKET, key=key, content_type="application/x-test"))
    done = []
    for n, data in enumerate(parts, start=1):
        up = client.upload_part(oss.UploadPartRequest(
            bucket=BUCKET, key=key, upload_id=init.upload_id, part_number=n, body=data))
        done.append(oss.UploadPart(part_number=n, etag=up.etag))
    listed = client.list_parts(oss.ListPartsRequest(bucket=BUCKET, key=key, upload_id=init.upload_id))
    assert [p.part_number for p in listed.parts] == [1, 2, 3]
    assert [p.size for p in listed.parts] == [len(p) for p in parts]
    result = client.complete_multipart_upload(oss.CompleteMultipartUploadRequest(
        bucket=BUCKET, key=key, upload_id=init.upload_id,
        complete_multipart_upload=oss.CompleteMultipartUpload(parts=done)))
    whole = b"".join(parts)
    assert result.etag.endswith('-3"')
    assert int(result.hash_crc64) == crc64(whole)
    got = client.get_object(oss.GetObjectRequest(bucket=BUCKET, key=key))
    assert got.body.read() == whole
    assert got.content_type == "application/x-test"

    # The SDK's own uploader splits, uploads in parallel and checks CRC-64 itself.
    big = os.urandom(3 * 1024 * 1024 + 17)
    uploader = client.uploader(part_size=1024 * 1024, parallel_num=3)
    up = uploader.upload_from(oss.PutObjectRequest(bucket=BUCKET, key="big/uploader.bin"), __import__("io").BytesIO(big))
    assert up.status_code == 200
    assert client.get_object(oss.GetObjectRequest(bucket=BUCKET, key="big/uploader.bin")).body.read() == big


def test_abort_multipart(emulator):
    client = oss_client(emulator.endpoint)
    init = client.initiate_multipart_upload(oss.InitiateMultipartUploadRequest(bucket=BUCKET, key="a"))
    client.abort_multipart_upload(oss.AbortMultipartUploadRequest(bucket=BUCKET, key="a", upload_id=init.upload_id))
    with pytest.raises(oss.exceptions.OperationError) as e:
        client.list_parts(oss.ListPartsRequest(bucket=BUCKET, key="a", upload_id=init.upload_id))
    assert e.value.unwrap().code == "NoSuchUpload"


def test_list_objects_v2_with_delimiter_and_pages(emulator):
    client = oss_client(emulator.endpoint)
    keys = ["a/1", "a/2", "b/x y", "b/z+", "top", "ü/é"]
    for k in keys:
        client.put_object(oss.PutObjectRequest(bucket=BUCKET, key=k, body=b"x"))
    flat = []
    for page in client.list_objects_v2_paginator().iter_page(
            oss.ListObjectsV2Request(bucket=BUCKET, max_keys=2)):
        flat += [o.key for o in page.contents or []]
    assert flat == sorted(keys)
    grouped = client.list_objects_v2(oss.ListObjectsV2Request(bucket=BUCKET, delimiter="/"))
    assert [o.key for o in grouped.contents] == ["top"]
    assert [p.prefix for p in grouped.common_prefixes] == ["a/", "b/", "ü/"]
    prefixed = client.list_objects_v2(oss.ListObjectsV2Request(bucket=BUCKET, prefix="b/"))
    assert [o.key for o in prefixed.contents] == ["b/x y", "b/z+"]


def test_missing_key_and_delete(emulator):
    client = oss_client(emulator.endpoint)
    with pytest.raises(oss.exceptions.OperationError) as e:
        client.get_object(oss.GetObjectRequest(bucket=BUCKET, key="nope"))
    err = e.value.unwrap()
    assert err.status_code == 404 and err.code == "NoSuchKey" and err.request_id
    with pytest.raises(oss.exceptions.OperationError) as e:
        client.head_object(oss.HeadObjectRequest(bucket=BUCKET, key="nope"))
    assert e.value.unwrap().code == "NoSuchKey"  # read from x-oss-err on a bodiless HEAD
    assert client.delete_object(oss.DeleteObjectRequest(bucket=BUCKET, key="nope")).status_code == 204
    client.put_object(oss.PutObjectRequest(bucket=BUCKET, key="gone", body=b"1"))
    client.delete_object(oss.DeleteObjectRequest(bucket=BUCKET, key="gone"))
    with pytest.raises(oss.exceptions.OperationError):
        client.head_object(oss.HeadObjectRequest(bucket=BUCKET, key="gone"))


def test_presigned_url_from_the_sdk(emulator):
    import urllib.request

    client = oss_client(emulator.endpoint)
    client.put_object(oss.PutObjectRequest(bucket=BUCKET, key="pre signed", body=b"shared"))
    pre = client.presign(oss.GetObjectRequest(bucket=BUCKET, key="pre signed"))
    with urllib.request.urlopen(pre.url) as r:
        assert r.read() == b"shared"


def test_wrong_secret_is_refused(emulator):
    client = oss_client(emulator.endpoint, secret="not-the-secret")
    with pytest.raises(oss.exceptions.OperationError) as e:
        client.put_object(oss.PutObjectRequest(bucket=BUCKET, key="k", body=b"x"))
    err = e.value.unwrap()
    assert err.status_code == 403 and err.code == "SignatureDoesNotMatch"


def test_sdk_fails_when_the_emulator_has_another_secret():
    other = OssEmulator("a-different-secret")
    try:
        client = oss_client(other.endpoint, secret=OSS_ACCESS_KEY_SECRET)
        with pytest.raises(oss.exceptions.OperationError) as e:
            client.get_object(oss.GetObjectRequest(bucket=BUCKET, key="k"))
        assert e.value.unwrap().code == "SignatureDoesNotMatch"
    finally:
        other.stop()
