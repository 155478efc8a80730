"""Issue 9, finding 2: no server-side request to an address a planner types (S3 endpoints), no
remote error text echoed into a job's error or its report lines, and manifest URL fetches that
connect to the address that was checked (DNS rebinding)."""
from __future__ import annotations

import datetime
import http.server
import io
import socket
import ssl
import threading
from types import SimpleNamespace

import boto3
import pytest
import urllib3.util.connection
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import translation

from datasets import readers, services
from datasets.models import ImportJob, ImportStatus
from tests.conftest import make_photo

pytestmark = pytest.mark.django_db

SECRET = "INTERNAL-SECRET-BODY"
ACCESS_KEY = "AKIASSRFTESTKEY00001"
SESSION_TOKEN = "SSRF-TEST-SESSION-TOKEN"
S3_DENIED = (
    403,
    f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>{SECRET}</Message></Error>'.encode(),
)
PUBLIC_IP = "93.184.216.34"


def _start(routes: dict, context: ssl.SSLContext | None = None) -> SimpleNamespace:
    """A tiny HTTP(S) server on 127.0.0.1 that records every request (path and headers) and
    answers from `routes`: path prefix (the longest that matches) -> (status, body[, headers])."""
    seen: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append({"path": self.path, "headers": dict(self.headers)})
            match = max((p for p in routes if self.path.startswith(p)), key=len, default=None)
            status, body, *headers = routes[match] if match is not None else (404, b"not here")
            self.send_response(status)
            for name, value in (headers[0] if headers else {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    port = server.server_address[1]
    scheme = "https" if context else "http"
    return SimpleNamespace(server=server, port=port, url=f"{scheme}://127.0.0.1:{port}", seen=seen, routes=routes)


@pytest.fixture
def servers():
    started = []

    def start(routes, context=None):
        started.append(_start(routes, context))
        return started[-1]

    yield start
    for s in started:
        s.server.shutdown()
        s.server.server_close()


@pytest.fixture
def spy(servers):
    """Something listening on a loopback port that a planner should never reach; it answers like
    an S3 server refusing access, with a body the platform must not repeat."""
    return servers({"/": S3_DENIED})


@pytest.fixture(autouse=True)
def _english():
    """The refusals asserted here are matched in English (the default language is Korean)."""
    with translation.override("en"):
        yield


@pytest.fixture
def aws_env(monkeypatch, settings):
    for name, value in {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": "not-a-real-secret",
        "AWS_SESSION_TOKEN": SESSION_TOKEN,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",  # botocore's retries only slow the failing cases down
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_S3_ENDPOINT_URL", "AWS_PROFILE", "AWS_S3_REGION_NAME"):
        monkeypatch.delenv(name, raising=False)
    # boto3's default session keeps the credentials the first client found: a test before this
    # one (tests/test_s3.py) would leave its own.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    settings.INGEST = {**settings.INGEST, "S3_ENDPOINT_URLS": []}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- S3 endpoints are operator configuration


def test_api_refuses_a_typed_s3_endpoint_and_sends_nothing(api, source, aws_env, spy, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        r = api("planner").post("/api/imports/", HTTP_ACCEPT_LANGUAGE="en", data={"source": source.pk, "s3_bucket": "photos",
                                                  "s3_endpoint_url": spy.url}, format="json")
    # Before the fix: 201, and the worker sent a request signed with the access key id and the
    # session token to the loopback port, then stored the port's answer in the job's error.
    assert spy.seen == []
    assert r.status_code == 400 and "not allowed" in r.json()["detail"]
    assert not ImportJob.objects.exists()


def test_import_form_offers_only_the_operators_endpoints(client, users, source, aws_env, spy, settings):
    client.force_login(users["planner"])
    page = client.get(reverse("import-new")).content.decode()
    assert 'name="s3_endpoint_url"' not in page  # AWS only: nothing to choose, nowhere to type

    response = client.post(reverse("import-new"), {"source": source.pk, "mode": "s3", "s3_bucket": "photos",
                                                   "s3_endpoint_url": spy.url})
    assert response.status_code == 200 and "s3_endpoint_url" in response.context["form"].errors
    assert not ImportJob.objects.exists() and spy.seen == []

    settings.INGEST = {**settings.INGEST, "S3_ENDPOINT_URLS": ["https://minio.example:9000", spy.url]}
    page = client.get(reverse("import-new")).content.decode()
    assert '<select name="s3_endpoint_url"' in page
    assert f'<option value="{spy.url}">' in page and '<option value="https://minio.example:9000">' in page
    forged = f"http://127.0.0.1:{_closed_port()}"
    response = client.post(reverse("import-new"), {"source": source.pk, "mode": "s3", "s3_bucket": "photos",
                                                   "s3_endpoint_url": forged})
    assert "s3_endpoint_url" in response.context["form"].errors and not ImportJob.objects.exists()
    response = client.post(reverse("import-new"), {"source": source.pk, "mode": "s3", "s3_bucket": "photos",
                                                   "s3_endpoint_url": spy.url})
    assert response.status_code == 302
    assert ImportJob.objects.get().params["endpoint_url"] == spy.url


def test_service_allows_blank_the_configured_endpoints_and_the_trusted_command(source, aws_env, settings, monkeypatch):
    def s3_import(endpoint, **kwargs):
        return services.create_import(source=source, s3_bucket="photos", s3_endpoint_url=endpoint, enqueue=False,
                                      **kwargs)

    for endpoint in ("http://169.254.169.254", "http://127.0.0.1:9000", "https://s3.evil.example"):
        with pytest.raises(services.IngestError, match="not allowed"):
            s3_import(endpoint)
    assert s3_import(None).params["endpoint_url"] == ""

    # AWS_S3_ENDPOINT_URL is always allowed; spellings of an allowed endpoint store the operator's.
    monkeypatch.setenv("AWS_S3_ENDPOINT_URL", "http://minio.internal:9000")
    settings.INGEST = {**settings.INGEST, "S3_ENDPOINT_URLS": [" https://ceph.example/ "]}
    assert s3_import("HTTP://MINIO.internal:9000/").params["endpoint_url"] == "http://minio.internal:9000"
    assert s3_import("https://ceph.example:443").params["endpoint_url"] == "https://ceph.example/"
    with pytest.raises(services.IngestError, match="not allowed"):
        s3_import("https://ceph.example.evil.example")
    # The management command is run by the operator on the server: it may name any endpoint.
    assert s3_import("http://127.0.0.1:9000", trusted=True).params["endpoint_url"] == "http://127.0.0.1:9000"


def test_a_queued_job_whose_endpoint_is_no_longer_allowed_reads_nothing(source, aws_env, spy, settings):
    settings.INGEST = {**settings.INGEST, "S3_ENDPOINT_URLS": [spy.url]}
    job = services.create_import(source=source, s3_bucket="photos", s3_endpoint_url=spy.url, enqueue=False)
    settings.INGEST = {**settings.INGEST, "S3_ENDPOINT_URLS": []}  # e.g. queued before an upgrade
    job = services.run_import(job.pk)
    assert job.status == ImportStatus.FAILED and "not allowed" in job.error
    assert spy.seen == []


# ---------------------------------------------------------------- no remote text in errors


def test_ingest_s3_command_is_trusted_but_never_echoes_the_remote(aws_env, spy):
    with pytest.raises(CommandError) as failure:
        call_command("ingest_s3", "photos", "--endpoint-url", spy.url, "--source", "Bucket", "--licence",
                     "cc-by-4.0", "--category", "food", stdout=io.StringIO(), stderr=io.StringIO())
    # The operator's own choice of endpoint is honoured (signed with the server's credentials)...
    assert len(spy.seen) == 1
    assert ACCESS_KEY in spy.seen[0]["headers"]["Authorization"]
    assert spy.seen[0]["headers"]["X-Amz-Security-Token"] == SESSION_TOKEN
    # ...but what the remote said is not repeated (before: the job's error ended with its body).
    job = ImportJob.objects.get()
    assert SECRET not in job.error and SECRET not in str(failure.value)
    assert job.error == ("Cannot list s3://photos/: access denied (check the credentials and the bucket "
                         "policy; details are in the server log).")


def test_s3_object_read_errors_do_not_echo_the_remote(source, aws_env, servers, settings):
    listing = (
        b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Name>photos</Name><Prefix></Prefix><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys>"
        b"<IsTruncated>false</IsTruncated><Contents><Key>a.jpg</Key><Size>10</Size></Contents></ListBucketResult>"
    )
    remote = servers({"/photos?list-type=2": (200, listing), "/photos/a.jpg": S3_DENIED})
    settings.INGEST = {**settings.INGEST, "S3_ENDPOINT_URLS": [remote.url]}
    job = services.create_import(source=source, s3_bucket="photos", s3_endpoint_url=remote.url, category="food",
                                 enqueue=False)
    job = services.run_import(job.pk)
    item = job.items.get()
    assert [s["path"] for s in remote.seen][-1] == "/photos/a.jpg"
    assert item.outcome == "refused" and SECRET not in item.reason
    assert "access denied" in item.reason


def test_refused_unresolvable_and_connect_timeout_read_the_same(aws_env, settings, monkeypatch):
    """No port scanner: a closed port, a name that does not resolve and a connect timeout (a
    filtered port) all say the same; only an answer that never came is a timeout."""
    import botocore.exceptions
    import botocore.httpsession

    closed = f"http://127.0.0.1:{_closed_port()}"
    unresolvable = "http://no-such-host.example:9000"
    filtered = "http://192.0.2.1:9000"
    slow = "http://192.0.2.2:9000"
    settings.INGEST = {**settings.INGEST, "S3_ENDPOINT_URLS": [closed, unresolvable, filtered, slow]}
    real_getaddrinfo, real_send = socket.getaddrinfo, botocore.httpsession.URLLib3Session.send

    def getaddrinfo(host, *args, **kwargs):
        if host == "no-such-host.example":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real_getaddrinfo(host, *args, **kwargs)

    def send(self, request):
        if request.url.startswith(filtered):
            raise botocore.exceptions.ConnectTimeoutError(endpoint_url=request.url)
        if request.url.startswith(slow):
            raise botocore.exceptions.ReadTimeoutError(endpoint_url=request.url)
        return real_send(self, request)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(botocore.httpsession.URLLib3Session, "send", send)

    def error(endpoint):
        with pytest.raises(readers.ReaderError) as failure:
            readers.s3_entries("photos", "", endpoint)
        return str(failure.value).replace(endpoint, "<endpoint>")

    messages = {error(closed), error(unresolvable), error(filtered)}
    assert messages == {"Cannot list s3://photos/: <endpoint> could not be reached."}
    assert error(slow) == "Cannot list s3://photos/: <endpoint> did not answer in time."


def test_fetch_errors_name_the_manifest_url_not_where_it_redirected(source, servers):
    web = servers({"/moved.jpg": (302, b"", {"Location": "/SECRET-LOCATION/x.jpg"}),
                   "/SECRET-LOCATION/": (404, SECRET.encode())})
    url = f"{web.url}/moved.jpg"
    job = services.create_import(source=source, manifest=ContentFile(f"url\n{url}\n".encode(), name="m.csv"),
                                 enqueue=False)
    item = services.run_import(job.pk).items.get()
    assert [s["path"] for s in web.seen] == ["/moved.jpg", "/SECRET-LOCATION/x.jpg"]
    assert item.outcome == "refused"
    assert "SECRET" not in item.reason and "HTTP 404" in item.reason and url in item.reason


def test_private_address_refusals_name_no_resolved_address(settings, monkeypatch):
    settings.INGEST = {**settings.INGEST, "URL_ALLOW_PRIVATE": False}
    monkeypatch.setattr(socket, "getaddrinfo",
                        lambda host, *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.20.30.40", 80))])
    with pytest.raises(ValueError) as failure:
        readers._check_url("http://db.corp.example/a.jpg")
    assert "private address" in str(failure.value) and "10.20.30.40" not in str(failure.value)


# ---------------------------------------------------------------- DNS rebinding


@pytest.fixture
def rebinding(monkeypatch, settings):
    """A resolver that answers a public address for `name` the first time and 127.0.0.1 after
    that, and a network where the public address (PUBLIC_IP) leads to one of the test's servers."""
    settings.INGEST = {**settings.INGEST, "URL_ALLOW_PRIVATE": False}
    real_getaddrinfo = socket.getaddrinfo
    real_connect = urllib3.util.connection.create_connection
    state = SimpleNamespace(name=None, lookups=0, dialled=[], routes={})

    def getaddrinfo(host, port, *args, **kwargs):
        if host != state.name:
            return real_getaddrinfo(host, port, *args, **kwargs)
        state.lookups += 1
        address = PUBLIC_IP if state.lookups == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]

    def create_connection(address, *args, **kwargs):
        state.dialled.append(address)
        return real_connect(state.routes.get(address, address), *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
    return state


def test_url_fetch_connects_to_the_checked_address_not_a_second_lookup(rebinding, servers):
    photo = make_photo(seed=90)
    internal = servers({"/": (200, SECRET.encode())})  # what 127.0.0.1 answers at the URL's port
    public = servers({"/a.jpg": (200, photo)})
    rebinding.name = "rebind.example"
    rebinding.routes[(PUBLIC_IP, internal.port)] = ("127.0.0.1", public.port)

    body = readers.fetch_url(f"http://rebind.example:{internal.port}/a.jpg")
    assert internal.seen == []  # before the fix: requests looked the name up again and got 127.0.0.1
    assert rebinding.dialled == [(PUBLIC_IP, internal.port)]
    assert body == photo
    assert public.seen[0]["headers"]["Host"] == f"rebind.example:{internal.port}"


def _tls_context(tmp_path, hostname: str) -> tuple[ssl.SSLContext, str, list]:
    """A server context with a self-signed certificate for `hostname`, the certificate's path (a
    CA bundle for the client) and the list the server records each handshake's SNI name in."""
    pytest.importorskip("cryptography")  # moto (a test requirement) brings it
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{hostname}.pem", tmp_path / f"{hostname}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    sni: list = []
    context.sni_callback = lambda sock, server_name, ctx: sni.append(server_name)
    return context, str(cert_path), sni


def test_https_fetch_pins_the_address_and_still_verifies_the_hostname(rebinding, servers, tmp_path, monkeypatch):
    photo = make_photo(seed=91)
    context, bundle, sni = _tls_context(tmp_path, "photos.example")
    internal = servers({"/": (200, SECRET.encode())}, context)
    public = servers({"/a.jpg": (200, photo)}, context)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", bundle)  # trust the test's self-signed certificate
    rebinding.name = "photos.example"
    rebinding.routes[(PUBLIC_IP, internal.port)] = ("127.0.0.1", public.port)

    body = readers.fetch_url(f"https://photos.example:{internal.port}/a.jpg")
    assert internal.seen == []
    assert body == photo
    # The TLS session named the host (SNI) and the certificate was checked against the host name:
    # the certificate does not cover PUBLIC_IP, so a check against the address would have failed.
    assert sni == ["photos.example"]
    assert public.seen[0]["headers"]["Host"] == f"photos.example:{internal.port}"

    # A server whose certificate is for another name is refused: verification is still on.
    other_context, other_bundle, _ = _tls_context(tmp_path, "other.example")
    impostor = servers({"/a.jpg": (200, photo)}, other_context)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", other_bundle)
    rebinding.lookups = 0
    rebinding.routes[(PUBLIC_IP, internal.port)] = ("127.0.0.1", impostor.port)
    with pytest.raises(ValueError, match="cannot fetch"):
        readers.fetch_url(f"https://photos.example:{internal.port}/a.jpg")
    assert impostor.seen == [] and internal.seen == []
