"""Reads for ingesting posts: which posts are stored, which customers wrote them."""

from profiles.services._db import bulk_cursor


def post_keys_existing(*, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (source, external_id) pairs are stored already."""
    if not keys:
        return set()
    cursor = bulk_cursor()
    cursor.execute(
        """
        SELECT p.source, p.external_id FROM insights_post p
        JOIN unnest(%s::text[], %s::text[]) AS k(s, e)
          ON p.source = k.s AND p.external_id = k.e
        """,
        [[k[0] for k in keys], [k[1] for k in keys]],
    )
    return {(s, e) for s, e in cursor.fetchall()}


def customers_by_handle_or_email(
    *, handles: set[str], emails: set[str], attribute: str
) -> tuple[dict[str, int], dict[str, int]]:
    """Known, not erased customers by social handle (lower case, no "@"; listed in
    `Customer.attributes[attribute]`) and by email (lower case)."""
    by_handle: dict[str, int] = {}
    by_email: dict[str, int] = {}
    cursor = bulk_cursor()
    if handles:
        variants = sorted(handles | {f"@{h}" for h in handles})
        cursor.execute(
            """
            SELECT c.id, h FROM profiles_customer c,
                jsonb_array_elements_text(
                    CASE WHEN jsonb_typeof(c.attributes -> %(attr)s) = 'array'
                         THEN c.attributes -> %(attr)s ELSE '[]'::jsonb END) AS h
            WHERE c.erased_at IS NULL AND c.attributes ? %(attr)s
              AND lower(h) = ANY(%(handles)s::text[])
            ORDER BY c.id
            """,
            {"attr": attribute, "handles": variants},
        )
        for pk, handle in cursor.fetchall():
            by_handle.setdefault(handle.strip().lstrip("@").casefold(), pk)
    if emails:
        cursor.execute(
            """
            SELECT id, lower(email) FROM profiles_customer
            WHERE erased_at IS NULL AND email = ANY(%s::text[]) ORDER BY id
            """,
            [sorted(emails)],
        )
        for pk, email in cursor.fetchall():
            by_email.setdefault(email, pk)
    return by_handle, by_email
