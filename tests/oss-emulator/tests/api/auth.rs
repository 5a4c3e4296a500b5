//! Signature checks as OSS does them: wrong secret, unknown key, skew, anonymous, presigned, STS.

use crate::support::*;
use oss_emulator::Config;
use s3_oss_sync::oss::signing::Credentials;

async fn code(r: reqwest::Response) -> (u16, String) {
    (r.status().as_u16(), code_of(&r.text().await.unwrap()))
}

#[tokio::test]
async fn wrong_secret_unknown_key_skew_and_anonymous() {
    let emu = start().await;
    let good = Client::new(&emu);
    assert_eq!(
        good.send(Req::new("PUT", Some("k")).body("x"))
            .await
            .status(),
        200
    );

    let wrong = Client::with_creds(&emu, Credentials::new(AK, "wrong", None));
    let r = wrong.send(Req::new("GET", Some("k"))).await;
    let xml = r.text().await.unwrap();
    assert_eq!(code_of(&xml), "SignatureDoesNotMatch");
    assert!(
        element(&xml, "StringToSign").starts_with("OSS4-HMAC-SHA256\n"),
        "{xml}"
    );

    let unknown = Client::with_creds(&emu, Credentials::new("who", SK, None));
    assert_eq!(
        code(unknown.send(Req::new("GET", Some("k"))).await).await,
        (403, "InvalidAccessKeyId".into())
    );

    let mut skewed = Client::new(&emu);
    skewed.clock_shift = time::Duration::minutes(16);
    assert_eq!(
        code(skewed.send(Req::new("GET", Some("k"))).await).await,
        (403, "RequestTimeTooSkewed".into())
    );
    skewed.clock_shift = time::Duration::minutes(-14);
    assert_eq!(
        skewed.send(Req::new("GET", Some("k"))).await.status(),
        200,
        "within 15 minutes"
    );

    let anon = reqwest::get(format!("{}/{BUCKET}/k", emu.endpoint()))
        .await
        .unwrap();
    assert_eq!(code(anon).await, (403, "AccessDenied".into()));
}

#[tokio::test]
async fn a_changed_request_no_longer_matches() {
    let emu = start().await;
    let c = Client::new(&emu);
    c.send(Req::new("PUT", Some("k")).body("x")).await;
    // Sign one key, ask for another: the canonical URI differs.
    let url = c.presign(
        &Req::new("GET", Some("k")),
        time::OffsetDateTime::now_utc(),
        60,
    );
    let tampered = url.replace(&format!("/{BUCKET}/k?"), &format!("/{BUCKET}/j?"));
    assert_eq!(
        code(reqwest::get(tampered).await.unwrap()).await,
        (403, "SignatureDoesNotMatch".into())
    );
    assert_eq!(reqwest::get(url).await.unwrap().text().await.unwrap(), "x");
}

#[tokio::test]
async fn presigned_urls_expire() {
    let emu = start().await;
    let c = Client::new(&emu);
    c.send(Req::new("PUT", Some("p")).body("x")).await;
    let old = time::OffsetDateTime::now_utc() - time::Duration::minutes(5);
    let expired = c.presign(&Req::new("GET", Some("p")), old, 60);
    assert_eq!(
        code(reqwest::get(expired).await.unwrap()).await,
        (403, "AccessDenied".into())
    );
    let too_long = c.presign(
        &Req::new("GET", Some("p")),
        time::OffsetDateTime::now_utc(),
        604_801,
    );
    assert_eq!(
        code(reqwest::get(too_long).await.unwrap()).await,
        (400, "InvalidArgument".into())
    );
}

#[tokio::test]
async fn sts_token_is_required_and_checked() {
    let mut config = Config::new(AK, SK);
    config.credentials = vec![Credentials::new(AK, SK, Some("tok".into()))];
    let emu = start_with(config).await;
    let with = Client::with_creds(&emu, Credentials::new(AK, SK, Some("tok".into())));
    assert_eq!(
        with.send(Req::new("PUT", Some("k")).body("x"))
            .await
            .status(),
        200
    );
    let without = Client::new(&emu);
    assert_eq!(
        code(without.send(Req::new("GET", Some("k"))).await).await,
        (403, "InvalidSecurityToken".into())
    );
    let wrong = Client::with_creds(&emu, Credentials::new(AK, SK, Some("other".into())));
    assert_eq!(
        code(wrong.send(Req::new("GET", Some("k"))).await).await,
        (403, "InvalidSecurityToken".into())
    );
}

#[tokio::test]
async fn v1_signatures_are_refused_clearly() {
    let emu = start().await;
    let r = reqwest::Client::new()
        .get(format!("{}/{BUCKET}/k", emu.endpoint()))
        .header("authorization", "OSS ak:c2lnbmF0dXJl")
        .send()
        .await
        .unwrap();
    let xml = r.text().await.unwrap();
    assert_eq!(code_of(&xml), "InvalidArgument");
    assert!(element(&xml, "Message").contains("V1"));
}

#[tokio::test]
async fn credentials_rotate_at_run_time_and_reset_restores_them() {
    let emu = start().await;
    let old = Client::new(&emu);
    assert_eq!(
        old.send(Req::new("PUT", Some("k")).body("x"))
            .await
            .status(),
        200
    );
    let admin = |body: &'static str| {
        reqwest::Client::new()
            .put(format!("{}/_emulator/credentials", emu.endpoint()))
            .body(body)
            .send()
    };
    let r =
        admin(r#"{"access_key_id":"new-ak","access_key_secret":"new-sk","security_token":null}"#)
            .await
            .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        code(old.send(Req::new("GET", Some("k"))).await).await,
        (403, "InvalidAccessKeyId".into())
    );
    let new = Client::with_creds(&emu, Credentials::new("new-ak", "new-sk", None));
    assert_eq!(new.send(Req::new("GET", Some("k"))).await.status(), 200);
    // The same key id with a new secret: the old secret no longer signs.
    emu.set_credentials(vec![Credentials::new("new-ak", "newer-sk", None)]);
    assert_eq!(
        code(new.send(Req::new("GET", Some("k"))).await).await,
        (403, "SignatureDoesNotMatch".into())
    );
    assert_eq!(admin("[]").await.unwrap().status(), 400);
    let r = reqwest::Client::new()
        .post(format!("{}/_emulator/reset", emu.endpoint()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        old.send(Req::new("PUT", Some("k")).body("x"))
            .await
            .status(),
        200
    );
}
