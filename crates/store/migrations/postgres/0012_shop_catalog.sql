-- The shop's own catalog: what its feed or the admin API says about each item.
ALTER TABLE items ADD COLUMN currency TEXT NOT NULL DEFAULT 'EUR';
-- Unavailable items (out of stock, withdrawn) are never recommended.
ALTER TABLE items ADD COLUMN available BIGINT NOT NULL DEFAULT 1;
ALTER TABLE items ADD COLUMN image_url TEXT;
ALTER TABLE items ADD COLUMN brand TEXT;
-- Free attributes as a JSON object.
ALTER TABLE items ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
-- Set when the item itself is flagged sensitive (besides its category path).
ALTER TABLE items ADD COLUMN sensitive_kind TEXT;
-- A deleted item stays as a tombstone: trained models and histories address items by their
-- place in the item list, so a row never disappears; a tombstone is never listed or served.
ALTER TABLE items ADD COLUMN deleted BIGINT NOT NULL DEFAULT 0;
ALTER TABLE items ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
