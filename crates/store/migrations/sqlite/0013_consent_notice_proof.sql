-- Proof of what a banner showed (the CNIL method): the SHA-256 of the exact notice text and the
-- banner configuration version the visitor answered. Empty for decisions from elsewhere.
ALTER TABLE consent_records ADD COLUMN notice_hash TEXT;
