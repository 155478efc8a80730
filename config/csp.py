"""The Content-Security-Policy (django-csp): what pages may load, so that script injected through
stored data (issue 9: a `javascript:` original URL) stays inert even if a template slips.

Imported by settings, so nothing here may need Django to be set up.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from csp.constants import NONE, SELF, UNSAFE_INLINE


def media_origins(bucket: str | None, endpoint_url: str | None = None, region: str | None = None) -> list[str]:
    """The origins storage URLs (signed or not) point at when media lives on S3; [] on local disk.

    boto3 writes path-style URLs for a configured endpoint (MinIO, moto: host/bucket/key) and
    virtual-host URLs on AWS (bucket.s3.amazonaws.com), path-style again for names with dots;
    both spellings are listed where boto3's choice depends on more than these settings.
    """
    if not bucket:
        return []
    if endpoint_url:
        parts = urlsplit(endpoint_url)
        return [f"{parts.scheme}://{parts.netloc}", f"{parts.scheme}://{bucket}.{parts.netloc}"]
    origins = [f"https://{bucket}.s3.amazonaws.com"]
    if region:
        origins.append(f"https://{bucket}.s3.{region}.amazonaws.com")
        if "." in bucket:
            origins.append(f"https://s3.{region}.amazonaws.com")
    return origins


def policy(img_origins: list[str]) -> dict:
    """The policy every response carries (settings.CONTENT_SECURITY_POLICY).

    Style attributes are allowed (style-src-attr): server-rendered progress bars set their width
    in one, and a style attribute cannot run script or, with every fetch limited to this site,
    send data anywhere. Style sheets and <style> elements stay limited to this site's files.
    """
    return {
        "DIRECTIVES": {
            "default-src": [SELF],
            "script-src": [SELF],
            "style-src": [SELF],
            "style-src-attr": [UNSAFE_INLINE],
            "img-src": [SELF, "data:", *img_origins],
            "object-src": [NONE],
            "base-uri": [SELF],
            "form-action": [SELF],
            "frame-ancestors": [NONE],
        },
    }


def redoc_policy(view):
    """For Redoc's page only: its bundle injects <style> elements at run time (styled-components),
    runs its search index in a worker made from a blob: URL of its own code, and shows Redocly's
    logo from their CDN (an image: it cannot run script). script-src stays 'self', and the page
    shows nothing from the database but the API schema."""
    from csp.decorators import csp_update

    return csp_update({
        "style-src": [UNSAFE_INLINE], "worker-src": [SELF, "blob:"], "img-src": ["https://cdn.redoc.ly"],
    })(view)
