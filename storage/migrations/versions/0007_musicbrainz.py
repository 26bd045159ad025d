"""The free second signal: MusicBrainz artist mapping, ListenBrainz fresh releases, a shared rate limit.

``musicbrainz_artists``: when each followed Spotify artist's mapping to MusicBrainz was last
tried, and when it is tried next (weekly, then monthly, while unmapped).
``musicbrainz_artist_links``: its MusicBrainz artist ids. ``musicbrainz_release_groups``: the
release groups of followed, mapped artists that ListenBrainz lists around today (first and last
seen, date changes, disappearance, barcodes, the Spotify release matched or the miss).
``musicbrainz_release_group_artists``: which followed Spotify artists a release group is by.
``rate_slots``: a request slot shared by every process (MusicBrainz: one request a second).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "musicbrainz_artists",
        sa.Column("spotify_id", sa.String(32), primary_key=True),
        sa.Column("attempted_at", sa.DateTime(), nullable=False),
        sa.Column("mapped_at", sa.DateTime(), nullable=True),
        sa.Column("unmapped_attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_musicbrainz_artists_next_attempt_at", "musicbrainz_artists", ["next_attempt_at"])
    op.create_table(
        "musicbrainz_artist_links",
        sa.Column("spotify_id", sa.String(32), primary_key=True),
        sa.Column("mbid", sa.String(36), primary_key=True),
    )
    op.create_index("ix_musicbrainz_artist_links_mbid", "musicbrainz_artist_links", ["mbid"])
    op.create_table(
        "musicbrainz_release_groups",
        sa.Column("mbid", sa.String(36), primary_key=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("artist_credit_name", sa.Text(), nullable=False),
        sa.Column("artist_mbids", sa.JSON(), nullable=False),
        sa.Column("primary_type", sa.String(16), nullable=True),
        sa.Column("secondary_types", sa.JSON(), nullable=False),
        sa.Column("release_date", sa.Date(), nullable=False),
        sa.Column("release_mbid", sa.String(36), nullable=False),
        sa.Column("caa_id", sa.BigInteger(), nullable=True),
        sa.Column("caa_release_mbid", sa.String(36), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("gone_at", sa.DateTime(), nullable=True),
        sa.Column("date_changes", sa.JSON(), nullable=False),
        sa.Column("barcodes", sa.JSON(), nullable=False),
        sa.Column("barcodes_checked_at", sa.DateTime(), nullable=True),
        sa.Column("spotify_release_id", sa.String(32), sa.ForeignKey("releases.id"), nullable=True),
        sa.Column("match_method", sa.String(8), nullable=True),
        sa.Column("matched_at", sa.DateTime(), nullable=True),
        sa.Column("missed_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_musicbrainz_release_groups_release_date", "musicbrainz_release_groups", ["release_date"])
    op.create_table(
        "musicbrainz_release_group_artists",
        sa.Column(
            "release_group_mbid",
            sa.String(36),
            sa.ForeignKey("musicbrainz_release_groups.mbid", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("spotify_id", sa.String(32), primary_key=True),
    )
    op.create_index(
        "ix_musicbrainz_release_group_artists_spotify_id", "musicbrainz_release_group_artists", ["spotify_id"]
    )
    op.create_table(
        "rate_slots",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("next_at", sa.Double(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rate_slots")
    op.drop_index("ix_musicbrainz_release_group_artists_spotify_id", "musicbrainz_release_group_artists")
    op.drop_table("musicbrainz_release_group_artists")
    op.drop_index("ix_musicbrainz_release_groups_release_date", "musicbrainz_release_groups")
    op.drop_table("musicbrainz_release_groups")
    op.drop_index("ix_musicbrainz_artist_links_mbid", "musicbrainz_artist_links")
    op.drop_table("musicbrainz_artist_links")
    op.drop_index("ix_musicbrainz_artists_next_attempt_at", "musicbrainz_artists")
    op.drop_table("musicbrainz_artists")
