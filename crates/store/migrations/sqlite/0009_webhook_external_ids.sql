-- Webhooks that may carry the subject's external id (sealed until delivery).
ALTER TABLE webhooks ADD COLUMN include_external_id BIGINT NOT NULL DEFAULT 0;
-- The external id of a delivery, sealed with the subject's data key; only for such webhooks.
ALTER TABLE webhook_deliveries ADD COLUMN sealed_external_id TEXT;
