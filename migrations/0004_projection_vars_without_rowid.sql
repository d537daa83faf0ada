-- projection_vars keyed by its primary key alone (WITHOUT ROWID): a replay split over
-- processes builds each projection's vars in its own file, and a hidden rowid would
-- record the order the projections happened to write them in, which nothing means.
CREATE TABLE projection_vars_new (
    projection TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (projection, key)
) WITHOUT ROWID;
INSERT INTO projection_vars_new(projection, key, value) SELECT projection, key, value FROM projection_vars;
DROP TABLE projection_vars;
ALTER TABLE projection_vars_new RENAME TO projection_vars;
