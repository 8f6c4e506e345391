use super::formats::{cef_header, csv_cell, CSV_COLUMNS};
use super::*;

fn view(json: &str) -> RecordView {
    serde_json::from_str(json).unwrap()
}

const OP: &str = r#"{"seq":7,"prev":"00","time":"2025-01-31T12:00:00.000001Z","host":"h","pid":9,"uid":1000,"user":"alice","exe":"/bin/x","kind":"op","function":"C_Sign","identity":null,"role":null,"slot":1,"token":"S1","session":5,"mechanism":"CKM_ECDSA","key_label":"=cmd|x","key_id":"0a0b","key_version":2,"decision":"deny","rule":"r1","rv":"CKR_FUNCTION_FAILED","bytes_in":32,"bytes_out":0,"duration_us":12}"#;

#[test]
fn filters_match_key_user_denied_and_time() {
    let r = view(OP);
    let t = |s: &str| Timestamp::parse(s);
    assert!(Filter::default().matches(&r));
    assert!(Filter {
        key: Some("=cmd|x".into()),
        ..Filter::default()
    }
    .matches(&r));
    assert!(Filter {
        key: Some("0A0B".into()),
        ..Filter::default()
    }
    .matches(&r));
    assert!(!Filter {
        key: Some("other".into()),
        ..Filter::default()
    }
    .matches(&r));
    assert!(Filter {
        user: Some("alice".into()),
        ..Filter::default()
    }
    .matches(&r));
    assert!(Filter {
        user: Some("1000".into()),
        ..Filter::default()
    }
    .matches(&r));
    assert!(!Filter {
        user: Some("bob".into()),
        ..Filter::default()
    }
    .matches(&r));
    assert!(Filter {
        denied: true,
        ..Filter::default()
    }
    .matches(&r));
    assert!(Filter {
        from: t("2025-01-31"),
        to: t("2025-02-01"),
        ..Filter::default()
    }
    .matches(&r));
    assert!(!Filter {
        from: t("2025-02-01"),
        ..Filter::default()
    }
    .matches(&r));
    assert!(!Filter {
        to: t("2025-01-31T12:00:00Z"),
        ..Filter::default()
    }
    .matches(&r));
    let allowed = view(&OP.replace("\"deny\"", "\"allow\""));
    assert!(!Filter {
        denied: true,
        ..Filter::default()
    }
    .matches(&allowed));
}

#[test]
fn csv_quotes_and_defuses_formulas() {
    assert_eq!(csv_cell("plain"), "plain");
    assert_eq!(csv_cell("a,b"), "\"a,b\"");
    assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
    assert_eq!(csv_cell("=cmd|x"), "'=cmd|x");
    assert_eq!(csv_cell("-12"), "-12");
    let found = Found {
        file: "f".into(),
        line: 1,
        text: OP.into(),
        view: view(OP),
    };
    let mut out = Vec::new();
    header(&mut out, Format::Csv).unwrap();
    write_record(&mut out, Format::Csv, &found).unwrap();
    let text = String::from_utf8(out).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows[0].split(',').count(), CSV_COLUMNS.len());
    assert!(
        rows[1].starts_with("7,2025-01-31T12:00:00.000001Z,h,9,1000,alice,/bin/x,op,C_Sign"),
        "{}",
        rows[1]
    );
    assert!(
        rows[1].contains(",'=cmd|x,0a0b,2,deny,r1,CKR_FUNCTION_FAILED,32,0,12"),
        "{}",
        rows[1]
    );
}

#[test]
fn cef_escapes_and_carries_the_fields() {
    let line = cef_line(&view(OP));
    assert!(
        line.starts_with(&format!(
            "CEF:0|Keywarden|keywarden|{}|C_Sign|C_Sign denied|6|rt=1738324800000 externalId=7",
            crate::VERSION
        )),
        "{line}"
    );
    assert!(line.contains("cs2Label=keyLabel cs2=\\=cmd|x"), "{line}");
    assert!(
        line.contains("suser=alice") && line.contains("act=deny") && line.contains("reason=r1"),
        "{line}"
    );
    assert!(line.contains("cn1Label=bytesIn cn1=32"), "{line}");
    assert_eq!(cef_header("a|b\\c"), "a\\|b\\\\c");
}

#[test]
fn text_lines_summarise() {
    let line = text_line(&view(OP));
    assert_eq!(line, "2025-01-31T12:00:00.000001Z #7 alice@h pid 9 C_Sign DENIED rule=r1 CKR_FUNCTION_FAILED key==cmd|x v2 id=0a0b CKM_ECDSA in=32 out=0 12us");
}

#[test]
fn a_key_is_found_by_the_record_that_created_it() {
    let r = view(
        r#"{"kind":"op","function":"C_UnwrapKey","key_label":"kek","key_id":"01","rv":"CKR_OK","new_key_label":"app","new_key_id":"4B57"}"#,
    );
    for k in ["app", "4b57", "kek", "01"] {
        assert!(
            Filter {
                key: Some(k.into()),
                ..Filter::default()
            }
            .matches(&r),
            "{k}"
        );
    }
    assert!(!Filter {
        key: Some("other".into()),
        ..Filter::default()
    }
    .matches(&r));
    assert!(
        text_line(&r).contains(" key=kek id=01 new=app id=4B57 "),
        "{}",
        text_line(&r)
    );
    // CSV: appended columns; CEF: cs5/cs6.
    let found = Found {
        file: "f".into(),
        line: 1,
        text: String::new(),
        view: r.clone(),
    };
    let mut csv = Vec::new();
    write_record(&mut csv, Format::Csv, &found).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.trim_end().ends_with(",app,4B57,"), "{csv}");
    assert_eq!(
        csv.trim_end().split(',').count(),
        CSV_COLUMNS.len(),
        "{csv}"
    );
    let cef = cef_line(&r);
    assert!(
        cef.contains("cs5Label=newKeyLabel cs5=app cs6Label=newKeyId cs6=4B57"),
        "{cef}"
    );
}
