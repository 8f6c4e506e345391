//! The checks on a record beyond its link in the chain — its seal, the chain id,
//! the writers' sealing rules, the off-host copy — and, after the last file, the
//! head and the off-host copy's end.

use serde::Deserialize;

use super::chain::{chain_id_of, Digest};
use super::seal::Seal;
use super::verify::Verifier;
use super::verify_report::{Location, Problem};
use super::verify_rules::Fields;

#[derive(Deserialize)]
struct SealFields {
    kind: Option<String>,
    sealed_seq: Option<u64>,
    head: Option<String>,
    alg: Option<String>,
    key_id: Option<String>,
    sig: Option<String>,
}

impl Verifier<'_> {
    /// Checks a seal record; counts the records after the last verified seal.
    pub(super) fn seal(
        &mut self,
        line: &[u8],
        here: &Location,
        prev_hash: Digest,
        seq: u64,
    ) -> Result<(), Problem> {
        let fields: Option<SealFields> = serde_json::from_slice(line).ok();
        let Some(s) = fields.filter(|f| f.kind.as_deref() == Some("seal")) else {
            self.report.unsealed_tail += 1;
            return Ok(());
        };
        let bad = |why: &str| Problem::BadSeal(here.clone(), why.to_owned());
        if s.head.as_deref().and_then(Digest::from_hex) != Some(prev_hash)
            || s.sealed_seq.map(|q| q + 1) != Some(seq)
        {
            return Err(bad("it does not name the record before it"));
        }
        let seal = Seal {
            alg: s.alg.unwrap_or_default(),
            key_id: s.key_id.unwrap_or_default(),
            sig: s
                .sig
                .as_deref()
                .and_then(crate::audit::chain::from_hex)
                .ok_or_else(|| bad("unreadable signature"))?,
        };
        match self.sealer.map(|k| k.verify(&prev_hash.0, &seal)) {
            Some(Ok(true)) => {
                self.report.seals_verified += 1;
                self.report.last_sealed_seq = s.sealed_seq;
                self.report.unsealed_tail = 0;
                Ok(())
            }
            Some(Err(e)) => Err(bad(&e.to_string())),
            // With keys given, a seal by none of them is what a rewriter who made
            // their own key would leave: report it, never count it as fine.
            Some(Ok(false)) => Err(bad(&format!(
                "made by a key that was not given (alg {}, key_id {}); give its key to check it",
                seal.alg, seal.key_id
            ))),
            None if self.need_keys => Err(Problem::SealKeyMissing(format!(
                "{here} is sealed by alg {}, key_id {}, and no key to check it was given",
                seal.alg, seal.key_id
            ))),
            None => {
                let note = format!(
                    "seals by alg {}, key_id {} were not checked (no key given)",
                    seal.alg, seal.key_id
                );
                if !self.report.notes.contains(&note) {
                    self.report.notes.push(note);
                }
                self.report.seals_unchecked += 1;
                self.report.unsealed_tail += 1;
                Ok(())
            }
        }
    }

    /// The checks beyond the chain: the chain id against the head, the writers'
    /// sealing rules, the off-host copy.
    pub(super) fn extra(&mut self, line: &[u8], here: &Location) -> Result<(), Problem> {
        if here.seq == Some(0) {
            let first = chain_id_of(line);
            match &self.report.chain {
                Some(head) if *head != first => {
                    return Err(Problem::ChainMismatch {
                        head: head.clone(),
                        first,
                    })
                }
                Some(_) => {}
                None => self.report.chain = Some(first),
            }
        }
        if let Some(w) = &mut self.writers {
            let f: Fields = serde_json::from_slice(line).unwrap_or_default();
            w.record(&f, here)?;
        }
        if let (Some(copy), Some(seq)) = (self.against, here.seq) {
            if let Some(theirs) = copy.get(seq) {
                if theirs != line {
                    return Err(Problem::OffHost(format!(
                        "{here} differs from the seal {} holds for seq {seq}: the trail was rewritten",
                        copy.source
                    )));
                }
                self.matched += 1;
            }
        }
        Ok(())
    }

    /// After the last file: a seal of the off-host copy beyond the trail's end
    /// means records were removed from the end.
    pub(super) fn check_offhost_end(&mut self) {
        let Some(copy) = self.against else { return };
        let last = self.prev.as_ref().map(|(t, _)| t.seq);
        if let Some(seq) = copy.first_after(last) {
            if self.report.problem.is_none() {
                self.fail(Problem::OffHost(format!(
                    "{} holds a seal at seq {seq}, after the trail's end ({}): records were removed",
                    copy.source,
                    last.map_or_else(|| "nothing".to_owned(), |s| format!("seq {s}"))
                )));
            }
        }
    }

    /// After the last file: the record the head file names must have been seen.
    pub(super) fn check_head(&mut self) {
        let Some(head) = self.head else { return };
        let last_seq = self.prev.as_ref().map(|(t, _)| t.seq);
        if last_seq.is_none_or(|s| s < head.seq) && self.report.problem.is_none() {
            self.report.problem = Some(Problem::TailMissing {
                head_seq: head.seq,
                last_seq,
            });
        }
    }
}
