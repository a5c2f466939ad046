-- How a model version was trained and chosen: JSON with the model selection (the candidates'
-- validation figures per level, the choice) and the training options such as reweighing.
-- Empty for versions trained before this record existed.
ALTER TABLE model_versions ADD COLUMN training TEXT NOT NULL DEFAULT '';
