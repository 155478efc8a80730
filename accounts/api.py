"""REST API of the accounts app: who am I, and my API tokens.

Tokens: planners and ML engineers (and admins) create, list and revoke their own named tokens;
the key is shown once, in the create response; send it as `Authorization: Token <key>` or
`Authorization: Bearer <key>`. A custom client (a labelers' mobile app) signs in with
`POST /api/auth/login/` (username, password, device name), which gives every role a token for
that device, and signs out with `POST /api/auth/logout/`, which revokes it.
"""
from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from . import lockout, services
from .models import ApiToken, Role
from .permissions import HasRole


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Describes ApiTokenAuthentication in the schema, so Swagger UI's Authorize button works."""

    target_class = "accounts.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token from /api/tokens/: `Authorization: Bearer <key>` (or `Token <key>`).",
        }


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    role = serializers.CharField(help_text="The role stored on the account.")
    effective_role = serializers.CharField(help_text="The role checks use: admin for superusers.")


class MeView(APIView):
    """The user this request is authenticated as. Every role may call it."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=MeSerializer)
    def get(self, request):
        return Response(MeSerializer(request.user).data)


class ApiTokenSerializer(serializers.ModelSerializer):
    expires_in_days = serializers.IntegerField(
        write_only=True, required=False, allow_null=True, min_value=1, max_value=services.MAX_TOKEN_DAYS,
        help_text="Instead of expires_at: the token expires this many days from now.",
    )

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "expires_at", "expires_in_days", "last_used_at",
                  "revoked_at", "is_active"]
        read_only_fields = ["id", "prefix", "created_at", "last_used_at", "revoked_at", "is_active"]
        extra_kwargs = {
            "expires_at": {"help_text": "When the token stops working; null: until revoked (the default)."},
            "last_used_at": {"help_text": "Last request made with the token (kept to the minute)."},
        }

    def validate(self, attrs):
        days = attrs.pop("expires_in_days", None)
        if days is not None:
            if attrs.get("expires_at") is not None:
                raise serializers.ValidationError({"expires_in_days": ["Give expires_at or expires_in_days, not both."]})
            attrs["expires_at"] = services.token_expiry(days)
        return attrs


class NewApiTokenSerializer(ApiTokenSerializer):
    key = serializers.CharField(read_only=True, help_text="The token; shown this once and never again.")

    class Meta(ApiTokenSerializer.Meta):
        fields = ApiTokenSerializer.Meta.fields + ["key"]


@extend_schema_view(
    create=extend_schema(request=ApiTokenSerializer, responses={201: NewApiTokenSerializer}),
    destroy=extend_schema(description="Revoke the token (the row stays, marked revoked).",
                          responses={204: None, 404: OpenApiResponse(description="No such token of yours.")}),
    revoke=extend_schema(request=None, responses={200: ApiTokenSerializer}),
)
class ApiTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The caller's own API tokens."""

    serializer_class = ApiTokenSerializer
    permission_classes = [HasRole]
    read_roles = (Role.PLANNER, Role.ENGINEER)
    write_roles = (Role.PLANNER, Role.ENGINEER)
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        return ApiToken.objects.filter(user=self.request.user)

    def create(self, request, *args, **kwargs):
        serializer = ApiTokenSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            token, key = services.create_token(request.user, serializer.validated_data["name"],
                                               expires_at=serializer.validated_data.get("expires_at"))
        except services.TokenError as exc:
            field = "expires_at" if exc.field == "expires_at" else "name"
            raise serializers.ValidationError({field: [str(exc)]}) from None
        token.key = key
        return Response(NewApiTokenSerializer(token).data, status=status.HTTP_201_CREATED)

    def _revoke(self, request, pk) -> ApiToken:
        try:
            return services.revoke_token(request.user, int(pk))
        except (services.TokenError, ValueError):
            raise NotFound("No such token.") from None

    def destroy(self, request, pk=None):
        self._revoke(request, pk)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        return Response(ApiTokenSerializer(self._revoke(request, pk)).data)


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)
    device = serializers.CharField(max_length=100, help_text="A name for this device's token, e.g. 'Galaxy S24'.")


class LoginResponseSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="The token; shown this once. Send it as `Authorization: Token <key>`.")
    token = ApiTokenSerializer()
    user = MeSerializer()


class LockedOutSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="locked_out")
    detail = serializers.CharField()
    retry_after = serializers.IntegerField(help_text="Seconds until a sign-in may be tried again (also the Retry-After header).")


class LoginView(APIView):
    """Sign in from a custom client: a new named token for this device, for any role.
    Wrong credentials give 400 with one message that does not say which part was wrong. Too
    many wrong passwords lock the account, as on the login page (429 `locked_out`, even with the
    right password, until Retry-After seconds have passed or an admin unlocks it)."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(request=LoginSerializer, responses={201: LoginResponseSerializer, 429: LockedOutSerializer}, auth=[])
    def post(self, request):
        data = LoginSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        username = data.validated_data["username"]
        user = authenticate(request, username=username, password=data.validated_data["password"])
        if getattr(request, "axes_locked_out", False):
            seconds = lockout.retry_after(request, username)
            return Response({"code": "locked_out", "detail": lockout.lockout_message(seconds), "retry_after": seconds},
                            status=status.HTTP_429_TOO_MANY_REQUESTS, headers={"Retry-After": str(seconds)})
        if user is None or not user.is_active:
            raise serializers.ValidationError({"detail": ["The username or password is not right."]})
        token, key = services.create_device_token(user, data.validated_data["device"])
        return Response(
            {"key": key, "token": ApiTokenSerializer(token).data, "user": MeSerializer(user).data},
            status=status.HTTP_201_CREATED,
        )


class LogoutView(APIView):
    """Sign out a custom client: revoke the token this request was made with."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None, 400: OpenApiResponse(description="Not signed in with a token.")})
    def post(self, request):
        if not isinstance(request.auth, ApiToken):
            raise serializers.ValidationError({"detail": ["This request was not made with a token."]})
        services.revoke_token(request.user, request.auth.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
