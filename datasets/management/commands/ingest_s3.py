"""Import every image under an S3 bucket and prefix."""
from datasets.models import SourceKind

from ._ingest import IngestCommand


class Command(IngestCommand):
    help = "Import the images under an S3 bucket and prefix (credentials from the AWS_* environment)."
    source_kind = SourceKind.S3

    def add_arguments(self, parser):
        parser.add_argument("bucket", help="Bucket name.")
        parser.add_argument("--prefix", default="", help="Only keys that start with this prefix.")
        # Any endpoint may be named here: the command is run by the operator, on the server, with
        # the server's credentials. Imports from the web are held to INGEST_S3_ENDPOINT_URLS.
        parser.add_argument("--endpoint-url", default=None,
                            help="S3-compatible endpoint (MinIO, ...); default: AWS_S3_ENDPOINT_URL or AWS. Unlike "
                            "imports started from the browser or API, any endpoint may be named here.")
        self.add_common_arguments(parser, category_required=True)

    def handle(self, *args, **options):
        self.run(options, s3_bucket=options["bucket"], s3_prefix=options["prefix"],
                 s3_endpoint_url=options["endpoint_url"])
