"""The labeler page's report of a submit it blocked: POST /api/assignments/{id}/blocked/.

The page checks the text rules before it sends anything, so texts that break them never reach
services.submit. To let planners see what labelers actually meet, the page sends the codes of the
rules that stopped each submit attempt (one request per attempt, not per keystroke); the service
counts them like a refused submit (ProjectMember.rejection_count and RuleHit per rule).
"""
from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from . import services
from .models import Assignment, RuleCode


class BlockedRequestSerializer(serializers.Serializer):
    rules = serializers.ListField(
        child=serializers.ChoiceField(choices=RuleCode.choices), min_length=1, max_length=2 * len(RuleCode.values),
        help_text="Codes of the rules that stopped this submit attempt (each counted once).",
    )


class BlockedResponseSerializer(serializers.Serializer):
    counted = serializers.BooleanField(help_text="False once this photo has reported "
                                                 f"{services.MAX_BLOCKED_REPORTS_PER_ASSIGNMENT} attempts.")


class BlockedErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()


class BlockedSubmitView(APIView):
    """Count a submit attempt the labeler page blocked, with the rules that blocked it. Only the
    assignment's own labeler (anyone else: 404), while the photo is still theirs to submit."""

    @extend_schema(
        request=BlockedRequestSerializer,
        responses={
            200: BlockedResponseSerializer,
            400: OpenApiResponse(description="No rules, too many or unknown codes; nothing counted."),
            403: OpenApiResponse(BlockedErrorSerializer, description="Not an active labeler of this project."),
            404: OpenApiResponse(description="No such assignment of yours."),
            409: OpenApiResponse(BlockedErrorSerializer, description="The photo is already submitted, skipped or reported."),
        },
    )
    def post(self, request, pk: int):
        assignment = get_object_or_404(Assignment, pk=pk, labeler=request.user)
        form = BlockedRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            counted = services.record_blocked_submit(assignment, request.user, form.validated_data["rules"])
        except DjangoValidationError as exc:
            raise serializers.ValidationError(serializers.as_serializer_error(exc)) from None
        except services.LabelingError as exc:
            code = status.HTTP_403_FORBIDDEN if isinstance(exc, services.NotAMember) else status.HTTP_409_CONFLICT
            return Response({"code": exc.code, "detail": str(exc)}, status=code)
        return Response({"counted": counted})
