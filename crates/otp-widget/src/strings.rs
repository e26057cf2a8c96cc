//! Every text the widget shows, in English, Spanish and Arabic, each overridable one by one
//! through the `strings` option. `{n}`, `{phone}` and `{s}` are filled in where they appear.

use js_sys::Reflect;
use wasm_bindgen::JsValue;

/// The keys and the English texts.
const EN: &[(&str, &str)] = &[
    ("phone_label", "Phone number"),
    (
        "phone_hint",
        "Choose your country, or start with + and the country code.",
    ),
    (
        "phone_invalid",
        "That does not look like a phone number. Check the country and the number.",
    ),
    ("country", "Country"),
    (
        "country_needed",
        "Choose your country, or start the number with + and its country code.",
    ),
    ("phone_preview", "The code goes to {phone}"),
    ("send_code", "Send code"),
    ("sending", "Sending…"),
    ("code_label", "Enter the code sent to {phone}"),
    ("code_input", "One-time code, {n} characters"),
    ("checking", "Checking…"),
    ("wrong_code", "That code is wrong. {n} attempts left."),
    (
        "wrong_code_last",
        "That code is wrong. No attempts left: send a new code.",
    ),
    ("resend", "Send a new code"),
    ("resend_in", "Send a new code in {s} s"),
    ("change_number", "Use a different number"),
    ("expired", "This code has expired. Send a new one."),
    ("verified", "Verified {phone}"),
    ("error", "Something went wrong. Try again."),
    ("wait", "Too many tries. Try again in {s} s."),
    ("whatsapp_button", "Verify with WhatsApp"),
    ("whatsapp_open", "Open WhatsApp"),
    (
        "whatsapp_scan",
        "Scan with your phone's camera, then send the message WhatsApp opens with.",
    ),
    (
        "whatsapp_phone",
        "Send the message WhatsApp opens with, then tap the link you get back.",
    ),
    ("whatsapp_waiting", "Waiting for your message…"),
    (
        "whatsapp_claimed",
        "Message received. Tap the login link WhatsApp sent you.",
    ),
    ("whatsapp_expired", "This link has expired."),
    ("try_again", "Try again"),
    ("qr_label", "QR code that opens WhatsApp"),
    ("check_needed", "Complete the check above."),
    ("check_failed", "The check failed. Complete it again."),
];

const ES: &[(&str, &str)] = &[
    ("phone_label", "Número de teléfono"),
    (
        "phone_hint",
        "Elige tu país o empieza con + y el prefijo del país.",
    ),
    (
        "phone_invalid",
        "No parece un número de teléfono. Revisa el país y el número.",
    ),
    ("country", "País"),
    (
        "country_needed",
        "Elige tu país o empieza el número con + y el prefijo del país.",
    ),
    ("phone_preview", "El código se enviará a {phone}"),
    ("send_code", "Enviar código"),
    ("sending", "Enviando…"),
    ("code_label", "Escribe el código enviado a {phone}"),
    ("code_input", "Código de un solo uso, {n} caracteres"),
    ("checking", "Comprobando…"),
    (
        "wrong_code",
        "El código no es correcto. Quedan {n} intentos.",
    ),
    (
        "wrong_code_last",
        "El código no es correcto. No quedan intentos: pide uno nuevo.",
    ),
    ("resend", "Enviar un código nuevo"),
    ("resend_in", "Enviar un código nuevo en {s} s"),
    ("change_number", "Usar otro número"),
    ("expired", "El código ha caducado. Pide uno nuevo."),
    ("verified", "{phone} verificado"),
    ("error", "Algo ha fallado. Inténtalo de nuevo."),
    ("wait", "Demasiados intentos. Vuelve a intentarlo en {s} s."),
    ("whatsapp_button", "Verificar con WhatsApp"),
    ("whatsapp_open", "Abrir WhatsApp"),
    (
        "whatsapp_scan",
        "Escanea con la cámara del móvil y envía el mensaje con el que se abre WhatsApp.",
    ),
    (
        "whatsapp_phone",
        "Envía el mensaje con el que se abre WhatsApp y toca el enlace que recibes.",
    ),
    ("whatsapp_waiting", "Esperando tu mensaje…"),
    (
        "whatsapp_claimed",
        "Mensaje recibido. Toca el enlace que te envió WhatsApp.",
    ),
    ("whatsapp_expired", "Este enlace ha caducado."),
    ("try_again", "Intentar de nuevo"),
    ("qr_label", "Código QR que abre WhatsApp"),
    ("check_needed", "Completa la verificación de arriba."),
    (
        "check_failed",
        "La verificación ha fallado. Vuelve a completarla.",
    ),
];

const AR: &[(&str, &str)] = &[
    ("phone_label", "رقم الهاتف"),
    ("phone_hint", "اختر بلدك، أو ابدأ بـ ‎+‎ ورمز الدولة."),
    (
        "phone_invalid",
        "لا يبدو هذا رقم هاتف. تحقّق من البلد والرقم.",
    ),
    ("country", "البلد"),
    (
        "country_needed",
        "اختر بلدك، أو ابدأ الرقم بـ ‎+‎ ورمز الدولة.",
    ),
    ("phone_preview", "سيُرسل الرمز إلى ‎{phone}"),
    ("send_code", "إرسال الرمز"),
    ("sending", "جارٍ الإرسال…"),
    ("code_label", "أدخل الرمز المرسل إلى {phone}"),
    ("code_input", "رمز لمرة واحدة، {n} خانات"),
    ("checking", "جارٍ التحقق…"),
    ("wrong_code", "الرمز غير صحيح. المحاولات المتبقية: {n}."),
    (
        "wrong_code_last",
        "الرمز غير صحيح. لا محاولات متبقية: اطلب رمزًا جديدًا.",
    ),
    ("resend", "إرسال رمز جديد"),
    ("resend_in", "إرسال رمز جديد بعد {s} ث"),
    ("change_number", "استخدام رقم آخر"),
    ("expired", "انتهت صلاحية الرمز. اطلب رمزًا جديدًا."),
    ("verified", "تم التحقق من {phone}"),
    ("error", "حدث خطأ. حاول مرة أخرى."),
    ("wait", "محاولات كثيرة. حاول بعد {s} ث."),
    ("whatsapp_button", "التحقق عبر واتساب"),
    ("whatsapp_open", "فتح واتساب"),
    (
        "whatsapp_scan",
        "امسح الرمز بكاميرا هاتفك، ثم أرسل الرسالة التي يفتح بها واتساب.",
    ),
    (
        "whatsapp_phone",
        "أرسل الرسالة التي يفتح بها واتساب، ثم اضغط الرابط الذي يصلك.",
    ),
    ("whatsapp_waiting", "في انتظار رسالتك…"),
    (
        "whatsapp_claimed",
        "وصلت الرسالة. اضغط رابط الدخول الذي أرسله واتساب.",
    ),
    ("whatsapp_expired", "انتهت صلاحية هذا الرابط."),
    ("try_again", "حاول مرة أخرى"),
    ("qr_label", "رمز QR يفتح واتساب"),
    ("check_needed", "أكمل التحقق أعلاه."),
    ("check_failed", "فشل التحقق. أكمله مرة أخرى."),
];

fn find(table: &'static [(&'static str, &'static str)], key: &str) -> Option<&'static str> {
    table.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// The texts of one widget: a built-in language, then the page's overrides.
pub struct Strings {
    table: &'static [(&'static str, &'static str)],
    overrides: JsValue,
    /// True for a right-to-left language.
    pub rtl: bool,
}

impl Strings {
    /// The texts for `locale` (`es`, `ar-EG`; English otherwise), with `overrides` (an object
    /// of key -> text, or undefined).
    pub fn new(locale: &str, overrides: JsValue) -> Self {
        let lang = locale
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let table = match lang.as_str() {
            "es" => ES,
            "ar" => AR,
            _ => EN,
        };
        Self {
            table,
            overrides,
            rtl: lang == "ar",
        }
    }

    /// The text of `key`.
    pub fn get(&self, key: &str) -> String {
        if self.overrides.is_object() {
            if let Some(s) = Reflect::get(&self.overrides, &key.into())
                .ok()
                .and_then(|v| v.as_string())
            {
                return s;
            }
        }
        find(self.table, key)
            .or_else(|| find(EN, key))
            .unwrap_or(key)
            .to_owned()
    }

    /// The text of `key` with `{name}` replaced by `value`.
    pub fn fill(&self, key: &str, name: &str, value: &str) -> String {
        self.get(key).replace(&format!("{{{name}}}"), value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_every_key() {
        for table in [ES, AR] {
            for (k, _) in EN {
                assert!(table.iter().any(|(t, _)| t == k), "{k}");
            }
            assert_eq!(table.len(), EN.len());
        }
    }

    #[test]
    fn the_typescript_key_union_lists_every_key() {
        // edge-otp.d.ts's `StringKey`: these keys plus the loader's own `load_failed`.
        let dts = include_str!("../js/edge-otp.d.ts");
        let union = dts
            .split("export type StringKey =")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .expect("StringKey in edge-otp.d.ts");
        let listed: Vec<&str> = union
            .split('|')
            .map(|k| k.trim().trim_matches('"'))
            .filter(|k| !k.is_empty())
            .collect();
        let mut want: Vec<&str> = EN.iter().map(|(k, _)| *k).collect();
        want.push("load_failed");
        assert_eq!(listed, want);
    }
}
