"""Reads for ingesting posts: which posts are stored, which customers wrote them."""

from profiles.services._db import bulk_cursor, json_value


def post_ids_by_key(*, keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The ids of the stored posts among (source, external_id) pairs."""
    if not keys:
        return {}
    cursor = bulk_cursor()
    # One index probe per key (a LATERAL subquery with LIMIT): as a plain join the planner
    # hashes the whole table once it thinks 1,000 keys cost more than a scan, which grows
    # with the table (52 ms a batch at 90,000 posts, with statistics a little stale).
    cursor.execute(
        """
        SELECT k.s, k.e, found.id FROM unnest(%s::text[], %s::text[]) AS k(s, e)
        CROSS JOIN LATERAL (
            SELECT p.id FROM insights_post p
            WHERE p.source = k.s AND p.external_id = k.e LIMIT 1
        ) AS found
        """,
        [[k[0] for k in keys], [k[1] for k in keys]],
    )
    return {(s, e): pk for s, e, pk in cursor.fetchall()}


def customers_by_handle_or_email(
    *, handles: set[str], emails: set[str]
) -> tuple[dict[str, int], dict[str, int]]:
    """Known, not erased customers by social handle (lower case, no "@"; listed in
    `Customer.attributes["social_handles"]`, a list or one string) and by email (lower
    case)."""
    by_handle: dict[str, int] = {}
    by_email: dict[str, int] = {}
    cursor = bulk_cursor()
    if handles:
        # Matches the expression index of migration insights/0003_ingest.
        # One index probe per handle (a LATERAL join): the planner costs a single
        # `?| array` of 1,000 handles as cheaper than the index and scans every customer.
        cursor.execute(
            """
            SELECT DISTINCT c.id, c.attributes -> 'social_handles'
            FROM unnest(%(handles)s::text[]) AS k(h)
            CROSS JOIN LATERAL (
                SELECT id, attributes FROM profiles_customer
                WHERE attributes ? 'social_handles'
                  AND lower(replace((attributes -> 'social_handles')::text, '@', ''))::jsonb
                      ? k.h
                  AND erased_at IS NULL
            ) AS c
            ORDER BY c.id
            """,
            {"handles": sorted(handles)},
        )
        for pk, listed in cursor.fetchall():
            listed = json_value(listed)
            for handle in listed if isinstance(listed, list) else [listed]:
                key = str(handle).strip().lstrip("@").casefold()
                if key in handles:
                    by_handle.setdefault(key, pk)
    if emails:
        # Stored emails keep their capitals; matches the expression index of migration
        # insights/0004_customer_email_lower.
        cursor.execute(
            """
            SELECT id, lower(email) FROM profiles_customer
            WHERE erased_at IS NULL AND lower(email) = ANY(%s::text[]) ORDER BY id
            """,
            [sorted(emails)],
        )
        for pk, email in cursor.fetchall():
            by_email.setdefault(email, pk)
    return by_handle, by_email
