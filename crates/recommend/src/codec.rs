//! Model files: a versioned, checksummed binary format.
//!
//! Layout (all integers little-endian):
//! `b"CANDORMF"` | format `u32` | meta length `u32` | meta JSON | body length `u64` | body |
//! SHA-256 of everything before it (32 bytes).
//! The body holds the model's arrays as raw little-endian numbers (JSON would be ~5x larger and
//! slow to parse for factor matrices). The model version is `<kind>-<first 16 hex of
//! SHA-256(body)>`: content-addressed, so two fits with identical output share a version and a
//! decision log entry names exactly the numbers that produced it.
//!
//! Invariant: [`ModelFile::from_bytes`] either returns a model whose every index is in range
//! or an error; a flipped bit anywhere fails the checksum and the file is refused.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{RecError, Result};
use crate::models::{
    Als, AlsParams, ContentModel, ContentParams, ItemKnn, KnnParams, Model, ModelKind, Popularity,
};

const MAGIC: &[u8; 8] = b"CANDORMF";
/// Bumped on any incompatible change of the layout or of a body.
pub const FORMAT_VERSION: u32 = 1;

/// Everything about a model besides its numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    pub kind: ModelKind,
    /// Content-addressed version, e.g. `als-3f2a9c0d12ab45ef`.
    pub version: String,
    /// Seconds since the epoch when the file was made.
    pub created_unix: u64,
    /// External item id of every item index.
    pub item_ids: Vec<String>,
    /// Data categories the training data came from (e.g. `purchase`), for explanations.
    pub data_categories: Vec<String>,
    /// Purposes whose consent covered the training data.
    pub purposes: Vec<String>,
    /// Hyper-parameters of the model (shape depends on `kind`).
    pub params: serde_json::Value,
    /// Category names (content model only).
    #[serde(default)]
    pub categories: Vec<String>,
}

/// A model with its metadata: the unit the server trains, stores, loads and serves.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFile {
    pub meta: ModelMeta,
    pub model: Model,
}

impl ModelFile {
    /// Wraps a fitted model; computes its version from its numbers.
    pub fn new(
        model: Model,
        item_ids: Vec<String>,
        data_categories: Vec<String>,
        purposes: Vec<String>,
        created_unix: u64,
    ) -> Result<Self> {
        use crate::models::Scorer;
        if item_ids.len() != model.n_items() {
            return Err(RecError::Invalid(format!(
                "{} item ids for a model of {} items",
                item_ids.len(),
                model.n_items()
            )));
        }
        let body = encode_body(&model);
        let (params, categories) = match &model {
            Model::Popularity(_) => (serde_json::Value::Null, Vec::new()),
            Model::ItemKnn(m) => (to_json(&m.params)?, Vec::new()),
            Model::Als(m) => (to_json(&m.params)?, Vec::new()),
            Model::Content(m) => (to_json(&m.params)?, m.categories.clone()),
            Model::Blend(m) => (
                to_json(&crate::models::BlendParams {
                    knn: m.knn.params,
                    als: m.als.params,
                    knn_weight: m.knn_weight,
                })?,
                Vec::new(),
            ),
        };
        let hash = Sha256::digest(&body);
        let hex: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
        Ok(ModelFile {
            meta: ModelMeta {
                kind: model.kind(),
                version: format!("{}-{hex}", model.kind().name()),
                created_unix,
                item_ids,
                data_categories,
                purposes,
                params,
                categories,
            },
            model,
        })
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let meta = serde_json::to_vec(&self.meta)
            .map_err(|e| RecError::Invalid(format!("model meta: {e}")))?;
        let body = encode_body(&self.model);
        let mut out = Vec::with_capacity(8 + 4 + 4 + meta.len() + 8 + body.len() + 32);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
        out.extend_from_slice(&meta);
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&body);
        let sum = Sha256::digest(&out);
        out.extend_from_slice(&sum);
        Ok(out)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bad = |m: &str| RecError::CorruptModel(m.to_string());
        if bytes.len() < 8 + 4 + 4 + 8 + 32 || &bytes[..8] != MAGIC {
            return Err(bad("not a Candor model file (bad magic or too short)"));
        }
        let (content, sum) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(content).as_slice() != sum {
            return Err(bad("checksum mismatch: the file is corrupt or truncated"));
        }
        let mut r = Reader {
            buf: content,
            pos: 8,
        };
        let format = r.u32()?;
        if format != FORMAT_VERSION {
            return Err(RecError::CorruptModel(format!(
                "format version {format}, this build reads {FORMAT_VERSION}"
            )));
        }
        let meta_len = r.u32()? as usize;
        let meta: ModelMeta = serde_json::from_slice(r.take(meta_len)?)
            .map_err(|e| RecError::CorruptModel(format!("meta: {e}")))?;
        let body_len = r.u64()? as usize;
        let body = r.take(body_len)?;
        if r.pos != content.len() {
            return Err(bad("trailing bytes after the body"));
        }
        let model = decode_body(&meta, body)?;
        let file = ModelFile::new(
            model,
            meta.item_ids.clone(),
            meta.data_categories.clone(),
            meta.purposes.clone(),
            meta.created_unix,
        )?;
        if file.meta.version != meta.version {
            return Err(bad("version does not match the model's numbers"));
        }
        Ok(file)
    }

    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        let bytes = self.to_bytes()?;
        // write beside, then rename: a crash never leaves a half-written model under the name
        let tmp = path.with_extension("partial");
        std::fs::write(&tmp, &bytes).map_err(|e| RecError::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| RecError::io(path, e))
    }

    pub fn load(path: &std::path::Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| RecError::io(path, e))?;
        Self::from_bytes(&bytes)
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| RecError::Invalid(format!("params: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> Result<T> {
    serde_json::from_value(v.clone()).map_err(|e| RecError::CorruptModel(format!("params: {e}")))
}

#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u64(&mut self, v: usize) {
        self.0.extend_from_slice(&(v as u64).to_le_bytes());
    }
    fn u32s(&mut self, v: &[u32]) {
        self.u64(v.len());
        for x in v {
            self.0.extend_from_slice(&x.to_le_bytes());
        }
    }
    fn f32s(&mut self, v: &[f32]) {
        self.u64(v.len());
        for x in v {
            self.0.extend_from_slice(&x.to_le_bytes());
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| RecError::CorruptModel("truncated".into()))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn len(&mut self) -> Result<usize> {
        let n = self.u64()?;
        usize::try_from(n).map_err(|_| RecError::CorruptModel("length overflow".into()))
    }
    fn u32s(&mut self) -> Result<Vec<u32>> {
        let n = self.len()?;
        let b = self.take(
            n.checked_mul(4)
                .ok_or_else(|| RecError::CorruptModel("length".into()))?,
        )?;
        Ok(b.chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
    fn f32s(&mut self) -> Result<Vec<f32>> {
        Ok(self.u32s()?.into_iter().map(f32::from_bits).collect())
    }
}

fn encode_body(model: &Model) -> Vec<u8> {
    let mut w = Writer::default();
    match model {
        Model::Popularity(m) => w.u32s(&m.counts),
        Model::ItemKnn(m) => encode_knn(&mut w, m),
        Model::Als(m) => encode_als(&mut w, m),
        Model::Blend(m) => {
            encode_knn(&mut w, &m.knn);
            encode_als(&mut w, &m.als);
        }
        Model::Content(m) => {
            w.u32s(&m.item_cat_ptr);
            w.u32s(&m.item_cat);
            w.f32s(&m.popularity);
        }
    }
    w.0
}

fn encode_knn(w: &mut Writer, m: &ItemKnn) {
    w.u64(m.n_items);
    w.u32s(&m.indptr);
    w.u32s(&m.neighbour);
    w.f32s(&m.similarity);
}

fn encode_als(w: &mut Writer, m: &Als) {
    w.u64(m.n_users);
    w.u64(m.n_items);
    w.f32s(&m.user_factors);
    w.f32s(&m.item_factors);
}

fn decode_knn(r: &mut Reader<'_>, params: KnnParams) -> Result<ItemKnn> {
    let n_items = r.len()?;
    let (indptr, neighbour, similarity) = (r.u32s()?, r.u32s()?, r.f32s()?);
    check_csr(&indptr, &neighbour, n_items, n_items, "item-knn")?;
    if similarity.len() != neighbour.len() {
        return Err(RecError::CorruptModel("item-knn: length mismatch".into()));
    }
    Ok(ItemKnn {
        params,
        n_items,
        indptr,
        neighbour,
        similarity,
    })
}

fn decode_als(r: &mut Reader<'_>, params: AlsParams) -> Result<Als> {
    let (n_users, n_items) = (r.len()?, r.len()?);
    let (user_factors, item_factors) = (r.f32s()?, r.f32s()?);
    if params.factors == 0
        || Some(user_factors.len()) != n_users.checked_mul(params.factors)
        || Some(item_factors.len()) != n_items.checked_mul(params.factors)
    {
        return Err(RecError::CorruptModel("als: factor shapes".into()));
    }
    Ok(Als {
        params,
        n_users,
        n_items,
        user_factors,
        item_factors,
    })
}

fn check_csr(ptr: &[u32], idx: &[u32], n_rows: usize, n_cols: usize, what: &str) -> Result<()> {
    let ok = ptr.len() == n_rows + 1
        && ptr.first() == Some(&0)
        && ptr.windows(2).all(|w| w[0] <= w[1])
        && ptr.last().map(|&l| l as usize) == Some(idx.len())
        && idx.iter().all(|&i| (i as usize) < n_cols);
    if ok {
        Ok(())
    } else {
        Err(RecError::CorruptModel(format!(
            "{what}: inconsistent sparse structure"
        )))
    }
}

fn decode_body(meta: &ModelMeta, body: &[u8]) -> Result<Model> {
    let mut r = Reader { buf: body, pos: 0 };
    let n_ids = meta.item_ids.len();
    let model = match meta.kind {
        ModelKind::Popularity => Model::Popularity(Popularity { counts: r.u32s()? }),
        ModelKind::ItemKnn => Model::ItemKnn(decode_knn(&mut r, from_json(&meta.params)?)?),
        ModelKind::Als => Model::Als(decode_als(&mut r, from_json(&meta.params)?)?),
        ModelKind::Blend => {
            let p: crate::models::BlendParams = from_json(&meta.params)?;
            let knn = decode_knn(&mut r, p.knn)?;
            let als = decode_als(&mut r, p.als)?;
            if knn.n_items != als.n_items || !(0.0..=1.0).contains(&p.knn_weight) {
                return Err(RecError::CorruptModel(
                    "blend: parts of different sizes or a weight outside [0, 1]".into(),
                ));
            }
            Model::Blend(crate::models::Blend {
                knn,
                als,
                knn_weight: p.knn_weight,
            })
        }
        ModelKind::Content => {
            let params: ContentParams = from_json(&meta.params)?;
            let (item_cat_ptr, item_cat, popularity) = (r.u32s()?, r.u32s()?, r.f32s()?);
            check_csr(
                &item_cat_ptr,
                &item_cat,
                popularity.len(),
                meta.categories.len(),
                "content",
            )?;
            Model::Content(ContentModel {
                params,
                categories: meta.categories.clone(),
                item_cat_ptr,
                item_cat,
                popularity,
            })
        }
    };
    if r.pos != body.len() {
        return Err(RecError::CorruptModel("trailing bytes in body".into()));
    }
    use crate::models::Scorer;
    if model.n_items() != n_ids {
        return Err(RecError::CorruptModel(format!(
            "{} item ids for a model of {} items",
            n_ids,
            model.n_items()
        )));
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::Interactions;

    fn file() -> ModelFile {
        let train = Interactions::from_rows(3, &[vec![0, 1], vec![1, 2], vec![0, 2]]).unwrap();
        let m = Model::ItemKnn(ItemKnn::fit(&train, KnnParams::default()));
        ModelFile::new(
            m,
            vec!["a".into(), "b".into(), "c".into()],
            vec!["purchase".into()],
            vec!["recommendations".into()],
            1_700_000_000,
        )
        .unwrap()
    }

    #[test]
    fn round_trips_every_kind() {
        let train = Interactions::from_rows(3, &[vec![0, 1], vec![1, 2], vec![0, 2]]).unwrap();
        let ids = vec!["a".to_string(), "b".into(), "c".into()];
        let als = Als::fit(
            &train,
            AlsParams {
                factors: 2,
                iterations: 2,
                ..AlsParams::default()
            },
        )
        .unwrap();
        let content = ContentModel::fit(
            vec!["x".into()],
            &[vec![0], vec![], vec![0]],
            &[1, 2, 3],
            ContentParams::default(),
        )
        .unwrap();
        for m in [
            Model::Popularity(Popularity::fit(&train)),
            Model::ItemKnn(ItemKnn::fit(&train, KnnParams::default())),
            Model::Als(als),
            Model::Content(content),
        ] {
            let f = ModelFile::new(m, ids.clone(), vec![], vec![], 1).unwrap();
            let back = ModelFile::from_bytes(&f.to_bytes().unwrap()).unwrap();
            assert_eq!(back, f);
            assert!(back.meta.version.starts_with(back.model.kind().name()));
        }
    }

    #[test]
    fn corrupt_files_are_refused() {
        let bytes = file().to_bytes().unwrap();
        for pos in [0, 9, 20, bytes.len() / 2, bytes.len() - 1] {
            let mut b = bytes.clone();
            b[pos] ^= 0x01;
            assert!(
                matches!(ModelFile::from_bytes(&b), Err(RecError::CorruptModel(_))),
                "pos {pos}"
            );
        }
        assert!(ModelFile::from_bytes(&bytes[..bytes.len() - 5]).is_err());
        assert!(ModelFile::from_bytes(b"hello").is_err());
    }
}
