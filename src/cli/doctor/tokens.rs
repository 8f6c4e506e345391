//! `doctor`'s backend checks: the module loads, its slots and tokens, and how to
//! initialise a token when there is none to use.

use std::path::Path;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use serde_json::json;

use super::report::{Doctor, Finding};
use crate::error::{Error, Result};

/// `false` when the module does not load (nothing else can be checked).
pub(super) fn backend(d: &mut Doctor, module: &Path) -> bool {
    d.line(format_args!("backend:  {}", module.display()));
    d.fact("backend", "module", module.display().to_string());
    match crate::backend::inspect_module(module) {
        Ok(summary) => {
            d.line(format_args!(
                "  loads; {} of 68 v2.40 functions; PKCS#11 3.0 interface: {}",
                summary.v2_40_functions,
                if summary.has_v3_0 { "yes" } else { "no" }
            ));
            d.fact("backend", "v2_40_functions", summary.v2_40_functions);
            d.fact("backend", "pkcs11_3_0", summary.has_v3_0);
        }
        Err(e) => {
            d.problem(Finding::new("backend_load", e.to_string()));
            return false;
        }
    }
    if let Err(e) = tokens(d, module) {
        d.problem(Finding::new("backend_tokens", e.to_string()));
    }
    true
}

fn tokens(d: &mut Doctor, module: &Path) -> Result<()> {
    let token_err = |e: cryptoki::error::Error| Error::Load(e.to_string());
    let p11 = Pkcs11::new(module).map_err(token_err)?;
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(token_err)?;
    let info = p11.get_library_info().map_err(token_err)?;
    let library = format!("{} {}", info.manufacturer_id(), info.library_description());
    d.line(format_args!("  library: {library}"));
    d.fact("backend", "library", library);
    let slots = p11.get_all_slots().map_err(token_err)?;
    d.line(format_args!("  slots: {}", slots.len()));
    let mut listed = Vec::new();
    let mut uninitialised = None;
    let mut initialised = 0;
    for slot in slots {
        match p11.get_token_info(slot) {
            Ok(t) if t.token_initialized() => {
                initialised += 1;
                let mechs = p11.get_mechanism_list(slot).map(|m| m.len()).unwrap_or(0);
                d.line(format_args!(
                    "  slot {:#x}: token \"{}\" serial {} model {} ({} mechanisms)",
                    slot.id(),
                    t.label(),
                    t.serial_number(),
                    t.model(),
                    mechs
                ));
                listed.push(json!({
                    "slot": slot.id(), "token": "initialised", "label": t.label(),
                    "serial": t.serial_number(), "model": t.model(), "mechanisms": mechs,
                }));
            }
            Ok(_) => {
                d.line(format_args!(
                    "  slot {:#x}: token not initialised",
                    slot.id()
                ));
                listed.push(json!({"slot": slot.id(), "token": "not_initialised"}));
                uninitialised.get_or_insert(slot.id());
            }
            Err(_) => {
                d.line(format_args!("  slot {:#x}: no token", slot.id()));
                listed.push(json!({"slot": slot.id(), "token": "absent"}));
            }
        }
    }
    d.fact("backend", "slots", listed);
    if initialised == 0 {
        let softhsm = info.manufacturer_id().contains("SoftHSM");
        d.warning(no_token(module, uninitialised, softhsm));
    }
    Ok(())
}

/// Nothing can log in or hold keys without an initialised token: say how to make one.
fn no_token(module: &Path, slot: Option<u64>, softhsm: bool) -> Finding {
    let f = Finding::new(
        "no_initialised_token",
        "no slot holds an initialised token: logins and keys need one",
    );
    let slot = slot.map_or_else(|| "N".to_owned(), |s| s.to_string());
    if softhsm {
        f.fix(format!(
            "softhsm2-util --init-token --slot {slot} --label LABEL \
             (it asks for the new SO PIN and user PIN)"
        ))
    } else {
        f.fix(format!(
            "initialise one with the HSM's own tool, or `pkcs11-tool --module {} \
             --init-token --slot {slot} --label LABEL` then `--init-pin`",
            module.display()
        ))
    }
}
