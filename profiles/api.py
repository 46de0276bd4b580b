from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from marketing.authentication import HasScope
from marketing.common.parsers import OrjsonParser
from marketing.models import ApiKey
from profiles import consent, privacy, selectors, services
from profiles.ingest import BatchInvalid, events_validate
from profiles.segments.selectors import segments_for_customer
from profiles.serializers import (
    AliasInputSerializer,
    ConsentInputSerializer,
    ConsentOutputSerializer,
    CustomerInputSerializer,
    CustomerOutputSerializer,
    CustomerSegmentsOutputSerializer,
    ErasureOutputSerializer,
    EventIngestOutputSerializer,
    EventInputSerializer,
)

ERROR = OpenApiResponse(description='Error body: {"code", "message", "extra"}')


class EventIngestView(APIView):
    """Events from storefronts: one object or a list of up to 1,000."""

    permission_classes = [HasScope]
    parser_classes = [OrjsonParser]
    required_scopes = {"POST": "events:write"}

    @extend_schema(
        operation_id="events_create",
        tags=["events"],
        request=EventInputSerializer(many=True),
        responses={202: EventIngestOutputSerializer, 400: ERROR, 401: ERROR, 403: ERROR},
        description="Stores each event once (event_id is the idempotency key). A batch with "
        "an invalid row is refused whole: nothing of it is stored, and `extra.rows` lists "
        "the errors by row index and field.",
    )
    def post(self, request):
        try:
            rows = events_validate(request.data, now=timezone.now())
        except BatchInvalid as exc:
            return Response(
                {
                    "code": "invalid",
                    "message": "The batch was refused; nothing was stored.",
                    "extra": {
                        "rows": {str(i): e for i, e in sorted(exc.errors.items())},
                        "non_field_errors": exc.non_field,
                    },
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        result = services.events_ingest(rows=rows)
        return Response(
            {"accepted": result.accepted, "duplicates": result.duplicates},
            status=status.HTTP_202_ACCEPTED,
        )


@extend_schema(tags=["customers"])
class CustomerViewSet(viewsets.GenericViewSet):
    """Profiles by the storefront's customer id (or an alias of it)."""

    permission_classes = [HasScope]
    required_scopes = {
        "retrieve": "profiles:read",
        "update": "profiles:write",
        "destroy": "profiles:write",
        "aliases": "profiles:write",
        "consents.GET": "profiles:read",
        "consents.POST": "profiles:write",
        "export": "profiles:read",
        "segments": "segments:read",
    }
    lookup_url_kwarg = "id"
    lookup_value_regex = "[^/]+"
    serializer_class = CustomerOutputSerializer

    def get_object(self):
        customer = selectors.customer_get_for_api(external_id=self.kwargs["id"])
        if customer is None:
            raise Http404("No such customer")
        return customer

    def _render(self, customer):
        features = selectors.customer_features(customer=customer)
        return CustomerOutputSerializer(customer, context={"features": features}).data

    @extend_schema(responses={200: CustomerOutputSerializer, 404: ERROR})
    def retrieve(self, request, id=None):
        return Response(self._render(self.get_object()))

    @extend_schema(
        request=CustomerInputSerializer,
        responses={200: CustomerOutputSerializer, 201: CustomerOutputSerializer, 400: ERROR},
        description="Identify: create the customer or update its attributes and endpoints.",
    )
    def update(self, request, id=None):
        data = CustomerInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        customer, created = services.customer_upsert(external_id=id, data=data.validated_data)
        customer = selectors.customer_get_for_api(external_id=customer.external_id)
        return Response(
            self._render(customer),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        request=AliasInputSerializer,
        responses={200: CustomerOutputSerializer, 400: ERROR, 404: ERROR, 409: ERROR},
        description="Link another id (e.g. an anonymous cookie id) to this customer. The "
        "anonymous profile's history merges into this one, and later events sent with the "
        "alias land here.",
    )
    @action(detail=True, methods=["post"])
    def aliases(self, request, id=None):
        customer = self.get_object()
        serializer = AliasInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.customer_alias_add(customer=customer, alias=serializer.validated_data["alias"])
        return Response(self._render(selectors.customer_get_for_api(external_id=id)))

    @extend_schema(
        methods=["GET"],
        responses={200: ConsentOutputSerializer(many=True), 404: ERROR},
        description="The customer's current consents; a purpose not listed is not granted.",
    )
    @extend_schema(
        methods=["POST"],
        request=ConsentInputSerializer,
        responses={200: ConsentOutputSerializer(many=True), 400: ERROR, 404: ERROR},
        description="Grant or withdraw consent for one purpose; every change is audited.",
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def consents(self, request, id=None):
        customer = self.get_object()
        if request.method == "POST":
            data = ConsentInputSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            consent.consent_set(
                customer=customer,
                purpose=data.validated_data["purpose"],
                granted=data.validated_data["granted"],
                source=data.validated_data["source"],
                actor=_actor(request),
                note=data.validated_data["note"],
            )
        rows = selectors.consent_list(customer=customer)
        return Response(ConsentOutputSerializer(rows, many=True).data)

    @extend_schema(
        responses={
            200: OpenApiResponse(description="Everything stored about the customer."),
            404: ERROR,
        }
    )
    @action(detail=True, methods=["get"])
    def export(self, request, id=None):
        return Response(privacy.privacy_export(customer=self.get_object()))

    @extend_schema(
        responses={200: CustomerSegmentsOutputSerializer, 404: ERROR},
        description="The segments the customer is in right now: rule segments evaluated on "
        "the spot (not from the last refresh), imported and machine-learned ones from their "
        "members. For triggers and in-app targeting.",
    )
    @action(detail=True, methods=["get"])
    def segments(self, request, id=None):
        customer = self.get_object()
        evaluated_at = timezone.now()
        rows = segments_for_customer(customer=customer, now=evaluated_at)
        body = {
            "customer_id": customer.external_id,
            "evaluated_at": evaluated_at,
            "segments": [
                {"id": s.pk, "name": s.name, "kind": s.kind} for s, member in rows if member
            ],
        }
        return Response(CustomerSegmentsOutputSerializer(body).data)

    @extend_schema(
        responses={200: ErasureOutputSerializer, 404: ERROR},
        description="Erase the customer's personal data everywhere (GDPR art. 17). Only a "
        "pseudonym with aggregate features remains.",
    )
    def destroy(self, request, id=None):
        erasure = privacy.customer_erase(
            customer=self.get_object(), source="api", actor=_actor(request)
        )
        return Response(ErasureOutputSerializer(erasure).data)


def _actor(request) -> str:
    if isinstance(request.auth, ApiKey):
        return f"api-key:{request.auth.name}"
    return f"user:{request.user.get_username()}"
