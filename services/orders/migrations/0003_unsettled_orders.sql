-- The orders still waiting for inventory's answer (CREATED), which the backlog admission counts
-- several times a second (backlog.py): only those rows are in the index, so the count costs
-- what the backlog holds, not the table's size.
CREATE INDEX orders_unsettled ON orders (created_at) WHERE status = 'CREATED';
