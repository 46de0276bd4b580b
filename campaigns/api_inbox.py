"""The in-app inbox API for storefronts: a customer's messages, and what the customer did
with them (read, clicked, dismissed)."""

from django.http import Http404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from campaigns.inbox_selectors import inbox_messages
from campaigns.inbox_services import InboxAction, inbox_message_mark
from campaigns.models import Message
from marketing.authentication import HasScope
from profiles.models import Customer
from profiles.selectors import customer_get_for_api

ERROR = OpenApiResponse(description='Error body: {"code", "message", "extra"}')
NOT_FOUND = OpenApiResponse(
    description="No such customer, or the message is not in this customer's inbox."
)
CUSTOMER_ID = OpenApiParameter(
    "id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The customer's id or an alias."
)
MESSAGE_ID = OpenApiParameter(
    "message_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The message's id."
)


class InboxMessageOutputSerializer(serializers.ModelSerializer):
    """The content comes from the payload stored at send time."""

    campaign = serializers.IntegerField(source="campaign_id")
    title = serializers.SerializerMethodField()
    body = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    icon = serializers.SerializerMethodField()
    read = serializers.SerializerMethodField(help_text="Whether the customer has read it.")

    class Meta:
        model = Message
        fields = ["id", "campaign", "title", "body", "url", "icon", "sent_at", "read"]

    def get_title(self, message: Message) -> str:
        return message.payload.get("title", "")

    def get_body(self, message: Message) -> str:
        return message.payload.get("body", "")

    def get_url(self, message: Message) -> str:
        return message.payload.get("url", "")

    def get_icon(self, message: Message) -> str:
        return message.payload.get("icon", "")

    def get_read(self, message: Message) -> bool:
        return message.opened_at is not None


class InboxFilterSerializer(serializers.Serializer):
    unread = serializers.BooleanField(
        required=False, default=False, help_text="Only messages not read yet (`unread=1`)."
    )


def _mark_schema(what: str):
    return extend_schema(
        parameters=[CUSTOMER_ID, MESSAGE_ID],
        request=None,
        responses={200: InboxMessageOutputSerializer, 403: ERROR, 404: NOT_FOUND},
        description=f"Record that the customer {what}. Idempotent: the first call sets the "
        "time and records the customer's event; repeats change nothing.",
    )


@extend_schema(tags=["messages"])
class CustomerMessageViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """A customer's in-app messages. Storefront keys need `messages:read` to list and
    `messages:write` to report reads, clicks and dismissals."""

    permission_classes = [HasScope]
    required_scopes = {
        "list": "messages:read",
        "read": "messages:write",
        "click": "messages:write",
        "dismiss": "messages:write",
    }
    serializer_class = InboxMessageOutputSerializer
    lookup_url_kwarg = "message_id"
    # At most 18 digits (a bigint); anything else is not a message's URL (404).
    lookup_value_regex = "[0-9]{1,18}"

    def _customer(self) -> Customer:
        customer = customer_get_for_api(external_id=self.kwargs["id"])
        if customer is None:
            raise Http404("No such customer")
        return customer

    def get_queryset(self):
        filters = InboxFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return inbox_messages(
            customer=self._customer(),
            now=timezone.now(),
            unread=filters.validated_data["unread"],
        )

    @extend_schema(
        parameters=[CUSTOMER_ID, InboxFilterSerializer],
        responses={
            200: InboxMessageOutputSerializer(many=True),
            400: ERROR,
            403: ERROR,
            404: NOT_FOUND,
        },
        description="The customer's in-app messages, newest first: sent in the last "
        "IN_APP_MESSAGE_TTL_DAYS days (30 by default) and not dismissed. The content is what "
        "was sent.",
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def _mark(self, what: InboxAction) -> Response:
        try:
            result = inbox_message_mark(
                customer=self._customer(), message_id=int(self.kwargs["message_id"]), action=what
            )
        except Message.DoesNotExist as exc:
            raise Http404("No such message in this customer's inbox") from exc
        return Response(InboxMessageOutputSerializer(result.message).data)

    @_mark_schema("read the message")
    @action(detail=True, methods=["post"])
    def read(self, request, *args, **kwargs):
        return self._mark(InboxAction.READ)

    @_mark_schema("clicked the message (which also marks it read)")
    @action(detail=True, methods=["post"])
    def click(self, request, *args, **kwargs):
        return self._mark(InboxAction.CLICK)

    @_mark_schema("dismissed the message: it leaves the inbox")
    @action(detail=True, methods=["post"])
    def dismiss(self, request, *args, **kwargs):
        return self._mark(InboxAction.DISMISS)
