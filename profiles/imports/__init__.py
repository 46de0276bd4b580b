"""CSV imports of customer data: interactions (Amazon Personalize), users (Personalize) and
channel endpoints (Amazon Pinpoint).

Each importer streams the file in chunks, one transaction per chunk, so a bad row costs
only itself and a crash keeps what was stored; re-running the same file changes nothing:
interactions get an event_id derived from the row's content, and customers and endpoints
are upserted by their natural keys, updating only rows whose values differ.

Blank cells mean "not given": they never overwrite a stored value.
"""

from marketing.common.csv_import import importer_register
from profiles.imports.customers import users_import
from profiles.imports.endpoints import endpoints_import
from profiles.imports.interactions import interactions_import

__all__ = ["endpoints_import", "interactions_import", "users_import"]

importer_register("interactions", interactions_import)
importer_register("users", users_import)
importer_register("endpoints", endpoints_import)
