-- schemas/catalog.sql: the witpipe catalog, one SQLite database per corpus
-- directory (DIR/catalog.db).
--
-- The file is a list of migrations. Each starts with a line
--   -- migration N
-- and is applied once, in order, inside one transaction, after which
-- PRAGMA user_version = N. A catalog whose user_version is higher than the
-- last migration here was written by a newer witpipe and is refused.
-- Never edit a migration that has shipped: add a new one.
--
-- Vocabulary used by every stage:
--   state        pending | ok | error       (per image: fetch outcome)
--   decision     keep | drop                (per pair and stage)
--   error_class  short lowercase word: dns, connect, timeout, http_4xx,
--                http_5xx, too_large, opt_out, blocked_address, not_an_image,
--                corrupt, too_small, ... (see README "Error classes")

-- migration 1
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    stage       TEXT NOT NULL,            -- add, fetch, crawl, shard, encode...
    params      TEXT NOT NULL DEFAULT '{}', -- JSON: the options the run used
    started_at  INTEGER NOT NULL,         -- unix seconds
    ended_at    INTEGER,                  -- NULL while running or if killed
    status      TEXT NOT NULL DEFAULT 'running', -- running | done | stopped | failed
    counts      TEXT NOT NULL DEFAULT '{}'  -- JSON: what the run did
);

CREATE TABLE sources (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,            -- list | files | seeds | warc | wat
    location    TEXT NOT NULL,            -- path or URL as given
    params      TEXT NOT NULL DEFAULT '{}',
    added_at    INTEGER NOT NULL,
    UNIQUE (kind, location)
);

-- One row per distinct image URL: fetching is per URL, however many
-- captions point at it.
CREATE TABLE images (
    id            INTEGER PRIMARY KEY,
    url           TEXT NOT NULL UNIQUE,
    state         TEXT NOT NULL DEFAULT 'pending',
    error_class   TEXT,
    error_detail  TEXT,
    http_status   INTEGER,
    attempts      INTEGER NOT NULL DEFAULT 0,
    opt_out       TEXT,                   -- the directive that opted out, if any
    format        TEXT,                   -- jpeg | png | webp (stored bytes)
    orig_format   TEXT,
    orig_width    INTEGER,
    orig_height   INTEGER,
    orig_bytes    INTEGER,
    orig_sha256   TEXT,                   -- hex SHA-256 of the bytes as served
    width         INTEGER,                -- stored image
    height        INTEGER,
    bytes         INTEGER,
    sha256        TEXT,                   -- hex SHA-256 of the stored bytes
    store_file    INTEGER,                -- store/NNNNNN.dat
    store_offset  INTEGER,
    fetch_ms      INTEGER,                -- wall time of the download
    fetched_at    INTEGER,
    run_id        INTEGER REFERENCES runs(id)
);
CREATE INDEX images_state ON images (state, id);

-- Candidate pairs. uid = hex of the first 16 bytes of
-- SHA-256(url || 0x00 || text): the same pair from any source is one row.
CREATE TABLE pairs (
    id          INTEGER PRIMARY KEY,
    uid         TEXT NOT NULL UNIQUE,
    image_id    INTEGER NOT NULL REFERENCES images(id),
    text        TEXT NOT NULL,            -- the caption (valid UTF-8)
    source_id   INTEGER REFERENCES sources(id),
    origin      TEXT,                     -- where first seen: file:line or page URL
    extra       TEXT,                     -- JSON: kept columns, alt/title/figcaption, page title, lang
    added_at    INTEGER NOT NULL,
    run_id      INTEGER REFERENCES runs(id)
);
CREATE INDEX pairs_image ON pairs (image_id);

-- Every further place a pair was seen (pages, archives), beyond the first.
CREATE TABLE pair_seen (
    pair_id     INTEGER NOT NULL REFERENCES pairs(id),
    source_id   INTEGER REFERENCES sources(id),
    origin      TEXT NOT NULL,
    PRIMARY KEY (pair_id, origin)
) WITHOUT ROWID;

-- Per-stage decisions: why each pair was kept or dropped, and any score.
CREATE TABLE decisions (
    pair_id     INTEGER NOT NULL REFERENCES pairs(id),
    stage       TEXT NOT NULL,            -- dedup, filter, clip, balance...
    decision    TEXT NOT NULL,            -- keep | drop
    reason      TEXT,
    score       REAL,
    run_id      INTEGER REFERENCES runs(id),
    PRIMARY KEY (pair_id, stage)
) WITHOUT ROWID;

-- Shards written by `witpipe shard`. A shard row with done = 1 exists only
-- after its file was renamed into place.
CREATE TABLE shards (
    id          INTEGER PRIMARY KEY,
    output      TEXT NOT NULL,            -- output directory
    name        TEXT NOT NULL,            -- 00000.tar
    samples     INTEGER NOT NULL,
    bytes       INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    first_pair  INTEGER,
    last_pair   INTEGER,
    done        INTEGER NOT NULL DEFAULT 0,
    run_id      INTEGER REFERENCES runs(id),
    UNIQUE (output, name)
);

-- Live crawl frontier: one row per normalised page URL.
CREATE TABLE pages (
    id          INTEGER PRIMARY KEY,
    url         TEXT NOT NULL UNIQUE,
    depth       INTEGER NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending', -- pending | ok | error | skipped
    error_class TEXT,
    http_status INTEGER,
    pairs_found INTEGER,
    source_id   INTEGER REFERENCES sources(id),
    fetched_at  INTEGER
);
CREATE INDEX pages_state ON pages (state, depth, id);

-- robots.txt cache (RFC 9309 section 2.4: cached up to 24 hours).
CREATE TABLE robots (
    origin      TEXT PRIMARY KEY,         -- scheme://host:port
    http_status INTEGER,
    body        BLOB,
    fetched_at  INTEGER NOT NULL
);

-- Archive progress, so --warc/--wat runs resume at the last finished record.
CREATE TABLE archive_progress (
    source_id   INTEGER PRIMARY KEY REFERENCES sources(id),
    offset      INTEGER NOT NULL,         -- compressed byte offset of the next record
    records     INTEGER NOT NULL,
    done        INTEGER NOT NULL DEFAULT 0
);

-- Embeddings written by `witpipe encode`: row r of shard s of a model.
CREATE TABLE embeddings (
    pair_id     INTEGER NOT NULL REFERENCES pairs(id),
    model       TEXT NOT NULL,
    shard       INTEGER NOT NULL,
    row         INTEGER NOT NULL,
    clip_score  REAL,
    PRIMARY KEY (pair_id, model)
) WITHOUT ROWID;

-- migration 2
-- The fetch queue reads pending images in id order. A partial index holds
-- only those: adding an image appends one small entry (archive and list
-- loads add images by the million), and a fetched image leaves the index
-- instead of moving within it. `status` groups by state and error class,
-- which no index covered anyway.
DROP INDEX images_state;
CREATE INDEX images_pending ON images (id) WHERE state = 'pending';

-- migration 3
-- The live crawl no longer lets libcurl follow a page's redirects: each
-- target joins the frontier like a link (same depth), so robots.txt, scope
-- and --include/--exclude are checked for every hop (RFC 9309 section
-- 2.3.1.2 governs robots.txt itself, which is still followed). A page that
-- redirected gets state 'redirect'; redirects counts the hops that led to a
-- page, at most 5 (NET_MAX_REDIRECTS), as curl allowed.
ALTER TABLE pages ADD COLUMN redirects INTEGER NOT NULL DEFAULT 0;

-- migration 4
-- One stage-run API for every stage (catalog/catalog.h: cat_run_begin,
-- cat_run_counts, cat_run_end): a failed run keeps its error message, and
-- `status` finds each stage's last run through an index.
ALTER TABLE runs ADD COLUMN error TEXT;  -- the failure, when status = 'failed'
CREATE INDEX runs_stage ON runs (stage, id);

-- migration 5
-- Query lists (witpipe queries import/build) and matches (witpipe balance).
-- Each stored list gets the next version; only the newest list's entries
-- are kept in queries. A pair's matches are valid for the list version and
-- rule recorded in pair_matched; a pair matched under another list or rule
-- is matched again before balancing.
CREATE TABLE query_lists (
    version     INTEGER PRIMARY KEY,
    source      TEXT NOT NULL,            -- the file imported, or "build"
    sha256      TEXT NOT NULL,            -- of the entries joined by '\n'
    entries     INTEGER NOT NULL,
    params      TEXT NOT NULL DEFAULT '{}',
    created_at  INTEGER NOT NULL,
    run_id      INTEGER REFERENCES runs(id)
);
CREATE TABLE queries (
    version     INTEGER NOT NULL REFERENCES query_lists(version),
    entry       INTEGER NOT NULL,         -- 0-based position in the list
    text        TEXT NOT NULL,
    count       INTEGER,                  -- eligible pairs matching it (last balance run)
    kept        INTEGER,                  -- of those, kept by the last balance run
    PRIMARY KEY (version, entry)
) WITHOUT ROWID;
CREATE TABLE pair_matches (
    pair_id     INTEGER NOT NULL REFERENCES pairs(id),
    entry       INTEGER NOT NULL,         -- queries.entry of pair_matched.version
    PRIMARY KEY (pair_id, entry)
) WITHOUT ROWID;
CREATE TABLE pair_matched (
    pair_id     INTEGER PRIMARY KEY REFERENCES pairs(id),
    version     INTEGER NOT NULL,         -- query_lists.version matched against
    rule        TEXT NOT NULL             -- metaclip | metaclip2, +icase
);

-- migration 6
-- `witpipe filter`. Every pair's language as CLD2 detected it (lang is an
-- ISO 639-1 code such as en, de, zh, zh-Hant, or un when unknown; conf in
-- [0, 1], see README "Language"), kept across runs: a pair's text never
-- changes, so it is detected once. The audit and the balancer read it.
CREATE TABLE pair_lang (
    pair_id     INTEGER PRIMARY KEY REFERENCES pairs(id),
    lang        TEXT NOT NULL,
    conf        REAL NOT NULL,
    reliable    INTEGER NOT NULL          -- CLD2's is_reliable
);
-- The filter's decision per pair is in decisions (stage 'filter', reason =
-- the first rule that dropped it); this keeps every rule that would have
-- dropped it on its own (a JSON array of rule names, e.g.
-- ["min_words","lang"]), only for pairs that some rule failed, so the
-- audit can show what each rule alone removes.
CREATE TABLE filter_verdicts (
    pair_id     INTEGER PRIMARY KEY REFERENCES pairs(id),
    rules       TEXT NOT NULL,
    run_id      INTEGER REFERENCES runs(id)
);
-- Tags a stage attached to a pair: kind 'content' is the zero-shot content
-- label (best label of filter/content_labels.txt and its margin over the
-- second best, cosine units) from the named model.
CREATE TABLE pair_tags (
    pair_id     INTEGER NOT NULL REFERENCES pairs(id),
    kind        TEXT NOT NULL,
    label       TEXT NOT NULL,
    score       REAL,
    margin      REAL,
    model       TEXT,
    PRIMARY KEY (pair_id, kind)
) WITHOUT ROWID;

-- migration 7
-- `witpipe dedup`: the 64-bit DCT perceptual hashes of each stored image
-- (whole, and its centre with 5% cut from each side, which a cropped copy
-- matches),
-- kept so that a rerun (another radius, an interrupted run) hashes only
-- the images it has not seen. sha256 names the stored bytes the hash was
-- computed from (a re-fetched image is hashed again); phash is NULL when
-- the bytes could not be read or decoded. Its decisions go to the
-- decisions table with stage 'dedup'.
CREATE TABLE image_phash (
    image_id    INTEGER PRIMARY KEY REFERENCES images(id),
    phash       INTEGER,                  -- the 64 bits as a signed integer
    phash_inner INTEGER,                  -- the same of the image less 5% a side
    sha256      TEXT
);

-- migration 8
-- `witpipe merge` (docs/scale-out.md): every part catalog folded into this
-- one, recorded by a content fingerprint (SHA-256 of its runs and the
-- extent of its pairs) so that the same part is never merged twice; the
-- runs copied from a part point at it.
CREATE TABLE merged_parts (
    id          INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,     -- hex SHA-256, see cat_merge_fingerprint
    path        TEXT NOT NULL,            -- the part's directory as given
    merged_at   INTEGER NOT NULL,         -- unix seconds
    counts      TEXT NOT NULL DEFAULT '{}'
);
ALTER TABLE runs ADD COLUMN merged_part INTEGER REFERENCES merged_parts(id);

-- migration 9
-- image_phash.version: the definition its hashes were computed with (1:
-- RGB decode at >= 64 px a side, whole-pixel centre cut; 2: the JPEG
-- decoded straight to gray at >= 32 px, the fractional 5% centre box).
-- dedup hashes again every row of another version, so one run never
-- compares hashes of two definitions.
ALTER TABLE image_phash ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
