import json

from django.core.management.base import BaseCommand, CommandError

from experiments.attribution import (
    DEFAULT_LOOKBACK_DAYS,
    MODELS,
    AttributionError,
    AttributionSettings,
    attribute_all,
    format_table,
    read_paths_file,
)
from experiments.attribution.readers import FORMATS


class Command(BaseCommand):
    help = (
        "Attribute conversions to channels from a journeys CSV (journey_id,timestamp,channel,"
        "conversion,value) or aggregated paths (path;total_conversions;...), without touching "
        "the database. Prints a table, then credit per channel as JSON on the last line."
    )
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        parser.add_argument("--journeys", required=True, help="CSV file of touchpoints or paths")
        parser.add_argument("--model", default="all", choices=[*MODELS, "all"])
        parser.add_argument("--format", default="auto", choices=FORMATS, dest="file_format")
        parser.add_argument("--lookback-days", type=float, default=DEFAULT_LOOKBACK_DAYS)
        parser.add_argument("--no-lookback", action="store_true", help="keep touches of any age")
        parser.add_argument("--half-life-days", type=float, default=7.0)
        parser.add_argument("--direct-channel", default="direct")
        parser.add_argument("--json", action="store_true", help="JSON object on the last line")

    def handle(self, *args, **options):
        lookback = None if options["no_lookback"] else options["lookback_days"]
        if lookback is not None and lookback <= 0:
            raise CommandError("--lookback-days must be positive (or use --no-lookback)")
        if options["half_life_days"] <= 0:
            raise CommandError("--half-life-days must be positive")
        try:
            paths = read_paths_file(
                options["journeys"], file_format=options["file_format"], lookback_days=lookback
            )
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        settings = AttributionSettings(
            direct_channel=options["direct_channel"], half_life_days=options["half_life_days"]
        )
        models = MODELS if options["model"] == "all" else (options["model"],)
        try:
            results, skipped = attribute_all(paths, models=models, settings=settings)
        except AttributionError as exc:
            raise CommandError(str(exc)) from exc
        if not results:
            raise CommandError("; ".join(f"{m}: {reason}" for m, reason in skipped.items()))

        converting = paths.converting
        self.stdout.write(
            f"{paths.n_paths} paths, {converting.conversions.sum():g} conversions worth "
            f"{converting.value.sum():,.2f} over {len(paths.channels)} channels; "
            f"{paths.unattributed_conversions:g} conversions without a touch in the window"
        )
        self.stdout.write(format_table(results))
        for model, reason in skipped.items():
            self.stdout.write(f"{model}: skipped ({reason})")
        if options["json"]:
            payload = {
                "paths": paths.n_paths,
                "conversions": float(converting.conversions.sum()),
                "value": float(converting.value.sum()),
                "unattributed": {
                    "conversions": paths.unattributed_conversions,
                    "value": paths.unattributed_value,
                },
                "credit": {r.model: r.credit_by_channel() for r in results},
                "conversion_credit": {r.model: r.conversions_by_channel() for r in results},
                "channel_weights": {
                    r.model: dict(zip(r.channels, r.channel_weights.tolist(), strict=True))
                    for r in results
                    if r.channel_weights is not None
                },
                "skipped": skipped,
            }
            self.stdout.write(json.dumps(payload))
