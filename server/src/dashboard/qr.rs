//! Premises QR codes (场所码): a sticker at each shop's door that the worker's app scans to
//! open that shop (see `PremisesId::qr_text`). One code as PNG, and a printable sheet of a
//! grid's codes with names and addresses.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use image::{ImageEncoder, Luma};
use qrcode::{EcLevel, QrCode};
use serde::Deserialize;
use xuncha_core::model::PremisesId;

use super::{escape, supervisor_scope};
use crate::AppState;
use crate::accounts::Caller;
use crate::error::ApiError;

/// The PNG of a QR code holding `text`, about 300 px wide with its quiet zone.
pub fn png(text: &str) -> Result<Vec<u8>, ApiError> {
    // Level M survives a scuffed or partly dirty sticker.
    let code = QrCode::with_error_correction_level(text, EcLevel::M).map_err(ApiError::internal)?;
    let img = code.render::<Luma<u8>>().min_dimensions(300, 300).build();
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::L8,
        )
        .map_err(ApiError::internal)?;
    Ok(out)
}

fn out_of_scope() -> ApiError {
    ApiError::forbidden(
        "out_of_scope",
        "该场所不在您负责的范围内",
        "these premises are outside your area",
    )
}

/// `GET /dash/premises/{id}/qr.png`.
async fn premises_qr(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let scope = supervisor_scope(&state, &caller).await?;
    let id = PremisesId(id);
    let text = state
        .read_store(move |store, _tables| {
            let premises = store
                .premises(&id)?
                .ok_or_else(|| ApiError::not_found(format!("no premises {id}")))?;
            if !scope.covers(premises.fields.grid_id.as_deref().unwrap_or_default()) {
                return Err(out_of_scope());
            }
            Ok(id.qr_text())
        })
        .await?;
    let bytes = tokio::task::spawn_blocking(move || png(&text))
        .await
        .map_err(ApiError::internal)??;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "private, max-age=86400"),
        ],
        bytes,
    )
        .into_response())
}

/// Query of the sheet.
#[derive(Debug, Deserialize)]
struct SheetQuery {
    grid: String,
}

/// `GET /dash/qr?grid=ID`: every premises of a grid with its code, to print on stickers.
async fn sheet(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SheetQuery>,
) -> Result<Response, ApiError> {
    let scope = supervisor_scope(&state, &caller).await?;
    if !scope.covers(&q.grid) {
        return Err(out_of_scope());
    }
    let grid = q.grid.clone();
    let cards = state
        .read_store(move |store, _tables| {
            let mut cards = String::new();
            for p in store.premises_of_grid(&grid, false)? {
                cards.push_str(&format!(
                    "<figure><img src=\"/dash/premises/{id}/qr.png\" alt=\"\"><figcaption><b>{name}</b><br>{address}</figcaption></figure>",
                    id = escape(p.id.as_str()),
                    name = escape(&p.fields.name),
                    address = escape(&p.fields.address),
                ));
            }
            Ok(cards)
        })
        .await?;
    let html = format!(
        include_str!("../../assets/dashboard/qr.html"),
        grid = escape(&q.grid),
        cards = cards,
    );
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
}

/// The QR routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dash/premises/{id}/qr.png", get(premises_qr))
        .route("/dash/qr", get(sheet))
}
