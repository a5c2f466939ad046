//! The message catalog: every string the preference center shows, in English, German and French.
//!
//! Invariant: a message is an enum variant with all three texts, so a page cannot show a string
//! that is missing in one language (the compiler refuses it). The language is chosen by an
//! explicit choice (the switcher's `lang`), else by `Accept-Language`, else English.

/// A language the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    De,
    Fr,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::En, Lang::De, Lang::Fr];

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
            Lang::Fr => "fr",
        }
    }

    /// The language's own name, for the switcher.
    pub fn name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::De => "Deutsch",
            Lang::Fr => "Français",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        let primary = code.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        Lang::ALL.into_iter().find(|l| l.code() == primary)
    }

    /// `choice` if it names a language, else the best match of an `Accept-Language` header (by
    /// q-value, ties in header order), else English.
    pub fn negotiate(choice: Option<&str>, accept_language: Option<&str>) -> Lang {
        if let Some(l) = choice.and_then(Lang::parse) {
            return l;
        }
        let mut best: Option<(f32, Lang)> = None;
        for part in accept_language.unwrap_or("").split(',').take(20) {
            let mut fields = part.split(';');
            let Some(l) = fields.next().and_then(Lang::parse) else {
                continue;
            };
            let q = fields
                .find_map(|f| f.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, l));
            }
        }
        best.map_or(Lang::En, |(_, l)| l)
    }
}

macro_rules! catalog {
    ($($name:ident => $en:expr, $de:expr, $fr:expr;)*) => {
        /// One message of the catalog.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum M { $($name),* }

        impl M {
            pub const ALL: &'static [M] = &[$(M::$name),*];

            pub fn text(self, lang: Lang) -> &'static str {
                match self {
                    $(M::$name => match lang { Lang::En => $en, Lang::De => $de, Lang::Fr => $fr }),*
                }
            }
        }
    };
}

catalog! {
    Brand => "Privacy centre", "Datenschutz-Center", "Centre de confidentialité";
    Skip => "Skip to main content", "Zum Hauptinhalt springen", "Aller au contenu principal";
    Footer => "Served by Candor, which uses personal data only for the purposes it declares.",
        "Bereitgestellt von Candor, das personenbezogene Daten nur für die angegebenen Zwecke nutzt.",
        "Fourni par Candor, qui n'utilise les données personnelles que pour les finalités déclarées.";
    LanguageNav => "Language", "Sprache", "Langue";
    Title => "Your privacy choices", "Ihre Datenschutz-Einstellungen", "Vos choix de confidentialité";
    Lead => "Everything here takes effect at once. Nothing is switched on unless you switch it on.",
        "Alles hier gilt sofort. Nichts ist eingeschaltet, solange Sie es nicht einschalten.",
        "Tout ce que vous changez ici s'applique immédiatement. Rien n'est activé sans votre accord.";
    Contents => "On this page", "Auf dieser Seite", "Sur cette page";
    Saved => "Saved. Your choice applies from the next request on.",
        "Gespeichert. Ihre Wahl gilt ab der nächsten Anfrage.",
        "Enregistré. Votre choix s'applique dès la prochaine requête.";
    NothingChanged => "Nothing changed: these were already your choices.",
        "Nichts geändert: Das waren bereits Ihre Einstellungen.",
        "Rien n'a changé : c'étaient déjà vos choix.";
    FixBelow => "Please correct the marked field below.", "Bitte korrigieren Sie das markierte Feld unten.", "Veuillez corriger le champ signalé ci-dessous.";
    ErrorPrefix => "Error:", "Fehler:", "Erreur :";
    Permissions => "Your permissions", "Ihre Einwilligungen", "Vos autorisations";
    PermissionsIntro => "Choose for each purpose. Withdrawing is as easy as allowing.",
        "Entscheiden Sie für jeden Zweck. Widerrufen ist so einfach wie Erlauben.",
        "Choisissez pour chaque finalité. Retirer son accord est aussi simple que le donner.";
    NoPurposes => "No purposes need your permission.", "Für keinen Zweck ist Ihre Einwilligung nötig.", "Aucune finalité ne demande votre autorisation.";
    Allow => "Allow", "Erlauben", "Autoriser";
    DontAllow => "Don't allow", "Nicht erlauben", "Ne pas autoriser";
    Object => "Object", "Widersprechen", "M'opposer";
    Now => "Now:", "Derzeit:", "Actuellement :";
    StateGranted => "allowed", "erlaubt", "autorisé";
    StateDenied => "not allowed", "nicht erlaubt", "non autorisé";
    StateNotAsked => "you have not chosen yet (counts as not allowed)", "noch nicht entschieden (gilt als nicht erlaubt)", "pas encore choisi (vaut refus)";
    StateExpired => "your permission expired (counts as not allowed)", "Ihre Einwilligung ist abgelaufen (gilt als nicht erlaubt)", "votre autorisation a expiré (vaut refus)";
    StateRenewal => "this purpose changed; we need to ask you again", "dieser Zweck hat sich geändert; wir müssen Sie erneut fragen", "cette finalité a changé ; nous devons vous redemander";
    StateRestricted => "processing restricted at your request", "Verarbeitung auf Ihren Wunsch eingeschränkt", "traitement limité à votre demande";
    StateLegitimate => "in use unless you object", "aktiv, solange Sie nicht widersprechen", "actif sauf si vous vous y opposez";
    WhatChanged => "What changed:", "Was sich geändert hat:", "Ce qui a changé :";
    DataUsed => "Data it uses", "Verwendete Daten", "Données utilisées";
    SaveChoices => "Save my choices", "Meine Auswahl speichern", "Enregistrer mes choix";
    Personalization => "How personal should recommendations be?", "Wie persönlich sollen Empfehlungen sein?", "Quel niveau de personnalisation ?";
    LevelLegend => "Personalization level", "Stufe der Personalisierung", "Niveau de personnalisation";
    LevelOff => "Off: the same suggestions everyone gets", "Aus: dieselben Vorschläge wie für alle", "Désactivée : les mêmes suggestions pour tout le monde";
    LevelBasic => "Basic: only the interests you tell us", "Einfach: nur die Interessen, die Sie angeben", "De base : seulement les centres d'intérêt que vous indiquez";
    LevelFull => "Full: also what you browse and buy", "Voll: auch was Sie ansehen und kaufen", "Complète : aussi ce que vous consultez et achetez";
    SaveLevel => "Save level", "Stufe speichern", "Enregistrer le niveau";
    Preview => "Preview: what you would see at each level", "Vorschau: was Sie auf jeder Stufe sehen würden", "Aperçu : ce que vous verriez à chaque niveau";
    PreviewEmpty => "No suggestions at this level.", "Keine Vorschläge auf dieser Stufe.", "Aucune suggestion à ce niveau.";
    Chosen => "(your choice)", "(Ihre Wahl)", "(votre choix)";
    TooPersonal => "This feels too personal", "Das ist mir zu persönlich", "C'est trop personnel";
    TooPersonalHelp => "Lowers your level one step at once.", "Senkt Ihre Stufe sofort um eine Stufe.", "Baisse immédiatement votre niveau d'un cran.";
    Interests => "Your interests", "Ihre Interessen", "Vos centres d'intérêt";
    InterestsIntro => "Tell us what you like; at level basic these are all we use.", "Sagen Sie uns, was Sie mögen; auf der Stufe Einfach nutzen wir nur das.", "Dites-nous ce que vous aimez ; au niveau de base, c'est tout ce que nous utilisons.";
    Sensitive => "Sensitive categories", "Sensible Kategorien", "Catégories sensibles";
    SensitiveIntro => "We never suggest anything from these unless you tick it here.", "Daraus schlagen wir nie etwas vor, außer Sie kreuzen es hier an.", "Nous ne suggérons rien de ces catégories sauf si vous les cochez ici.";
    SaveInterests => "Save interests", "Interessen speichern", "Enregistrer mes centres d'intérêt";
    Quiet => "Quiet periods", "Ruhezeiten", "Périodes calmes";
    QuietIntro => "During a quiet period you get no personal suggestions or offers, for example around Mother's Day.",
        "In einer Ruhezeit erhalten Sie keine persönlichen Vorschläge oder Angebote, zum Beispiel rund um den Muttertag.",
        "Pendant une période calme, vous ne recevez ni suggestion ni offre personnelle, par exemple autour de la fête des mères.";
    NoQuiet => "You have no quiet periods.", "Sie haben keine Ruhezeiten.", "Vous n'avez aucune période calme.";
    Occasion => "Occasion", "Anlass", "Occasion";
    MothersDay => "Mother's Day", "Muttertag", "Fête des mères";
    FathersDay => "Father's Day", "Vatertag", "Fête des pères";
    Valentines => "Valentine's Day", "Valentinstag", "Saint-Valentin";
    Custom => "Another date", "Ein anderes Datum", "Une autre date";
    From => "From (YYYY-MM-DD)", "Von (JJJJ-MM-TT)", "Du (AAAA-MM-JJ)";
    Until => "Until (YYYY-MM-DD, inclusive)", "Bis (JJJJ-MM-TT, einschließlich)", "Au (AAAA-MM-JJ, inclus)";
    AddQuiet => "Add quiet period", "Ruhezeit hinzufügen", "Ajouter la période";
    Remove => "Remove", "Entfernen", "Supprimer";
    Why => "Why am I seeing this?", "Warum sehe ich das?", "Pourquoi est-ce que je vois ceci ?";
    WhyIntro => "What we would suggest to you now, and the reasons, worked out from your data as it is now.",
        "Was wir Ihnen jetzt vorschlagen würden, und warum, berechnet aus Ihren aktuellen Daten.",
        "Ce que nous vous suggérerions maintenant, et pourquoi, calculé à partir de vos données actuelles.";
    RecentShown => "Recently shown to you", "Kürzlich gezeigt", "Récemment affiché";
    NoneShown => "Nothing has been shown to you yet.", "Ihnen wurde noch nichts gezeigt.", "Rien ne vous a encore été montré.";
    Held => "What we hold on you", "Was wir über Sie speichern", "Ce que nous détenons sur vous";
    HeldIntro => "A summary of your data export. Download it for every detail.",
        "Eine Zusammenfassung Ihres Datenexports. Laden Sie ihn für alle Einzelheiten herunter.",
        "Un résumé de l'export de vos données. Téléchargez-le pour tous les détails.";
    Records => "records", "Einträge", "enregistrements";
    YourData => "Your data", "Ihre Daten", "Vos données";
    DownloadJson => "Download my data (JSON)", "Meine Daten herunterladen (JSON)", "Télécharger mes données (JSON)";
    DownloadCsv => "Download my data (CSV, zip)", "Meine Daten herunterladen (CSV, ZIP)", "Télécharger mes données (CSV, zip)";
    Erase => "Erase my data", "Meine Daten löschen", "Effacer mes données";
    EraseIntro => "Deletes everything we hold on you. You will be asked to confirm.",
        "Löscht alles, was wir über Sie speichern. Sie werden um Bestätigung gebeten.",
        "Supprime tout ce que nous détenons sur vous. Une confirmation vous sera demandée.";
    EraseConfirmTitle => "Erase all your data?", "Alle Ihre Daten löschen?", "Effacer toutes vos données ?";
    EraseConfirmText => "This cannot be undone. Your recommendations will no longer be personal. We keep only a signed receipt that the erasure happened.",
        "Das kann nicht rückgängig gemacht werden. Ihre Empfehlungen sind danach nicht mehr persönlich. Wir behalten nur eine signierte Bestätigung der Löschung.",
        "C'est irréversible. Vos recommandations ne seront plus personnelles. Nous ne gardons qu'un reçu signé de l'effacement.";
    EraseSuppress => "Also ignore any data that arrives about me later", "Auch später eintreffende Daten über mich verwerfen", "Ignorer aussi les données me concernant qui arriveraient plus tard";
    EraseYes => "Yes, erase my data", "Ja, meine Daten löschen", "Oui, effacer mes données";
    EraseNo => "No, go back", "Nein, zurück", "Non, revenir";
    Erased => "Your data has been erased.", "Ihre Daten wurden gelöscht.", "Vos données ont été effacées.";
    ReceiptId => "Receipt", "Bestätigung", "Reçu";
    Requests => "Your requests", "Ihre Anträge", "Vos demandes";
    NoRequests => "You have made no requests.", "Sie haben keine Anträge gestellt.", "Vous n'avez fait aucune demande.";
    Kind => "Request", "Antrag", "Demande";
    Status => "Status", "Status", "Statut";
    Due => "Answer due by", "Antwort fällig bis", "Réponse due le";
    LinkInvalidTitle => "This link is no longer valid", "Dieser Link ist nicht mehr gültig", "Ce lien n'est plus valide";
    LinkInvalidText => "Links to this page expire after a while, or when we replace them. Ask us for a new one: use the privacy link in your account or in any of our emails, or contact our support.",
        "Links zu dieser Seite laufen nach einer Weile ab oder wenn wir sie ersetzen. Fordern Sie einen neuen an: über den Datenschutz-Link in Ihrem Konto oder in unseren E-Mails, oder über unseren Kundendienst.",
        "Les liens vers cette page expirent au bout d'un certain temps, ou lorsque nous les remplaçons. Demandez-en un nouveau : via le lien confidentialité de votre compte ou de nos e-mails, ou auprès de notre service client.";
    ForbiddenTitle => "This form has expired", "Dieses Formular ist abgelaufen", "Ce formulaire a expiré";
    ForbiddenText => "Nothing was changed. Go back to your privacy choices, reload the page and try again.",
        "Es wurde nichts geändert. Gehen Sie zurück zu Ihren Einstellungen, laden Sie die Seite neu und versuchen Sie es erneut.",
        "Rien n'a été modifié. Revenez à vos choix, rechargez la page et réessayez.";
    TooLargeTitle => "This form is too large", "Dieses Formular ist zu groß", "Ce formulaire est trop volumineux";
    TooLargeText => "Nothing was changed. Please send less text.", "Es wurde nichts geändert. Bitte senden Sie weniger Text.", "Rien n'a été modifié. Veuillez envoyer moins de texte.";
    Continue => "Continue to your privacy choices", "Weiter zu Ihren Datenschutz-Einstellungen", "Continuer vers vos choix de confidentialité";
    FailedTitle => "Something went wrong", "Etwas ist schiefgelaufen", "Une erreur s'est produite";
    FailedText => "Your request could not be completed. Please try again later.", "Ihre Anfrage konnte nicht abgeschlossen werden. Bitte versuchen Sie es später erneut.", "Votre demande n'a pas pu aboutir. Veuillez réessayer plus tard.";
    BannerTitle => "Your privacy choices on this site", "Ihre Datenschutz-Einstellungen auf dieser Website", "Vos choix de confidentialité sur ce site";
    BannerBody => "We would like to use your data for the purposes below. Nothing happens unless you allow it, and you can change your mind at any time.",
        "Wir möchten Ihre Daten für die unten genannten Zwecke nutzen. Ohne Ihre Erlaubnis geschieht nichts, und Sie können Ihre Meinung jederzeit ändern.",
        "Nous aimerions utiliser vos données pour les finalités ci-dessous. Rien ne se fait sans votre accord, et vous pouvez changer d'avis à tout moment.";
    AcceptAll => "Accept all", "Alle akzeptieren", "Tout accepter";
    RejectAll => "Reject all", "Alle ablehnen", "Tout refuser";
    Choose => "Choose", "Auswählen", "Choisir";
    SaveChoice => "Save my choice", "Meine Auswahl speichern", "Enregistrer mon choix";
    GpcHonoured => "Your browser sends a Global Privacy Control signal: we honour it, so selling or sharing your data stays off.",
        "Ihr Browser sendet ein Global-Privacy-Control-Signal: Wir respektieren es, Verkauf oder Weitergabe Ihrer Daten bleiben ausgeschaltet.",
        "Votre navigateur envoie un signal Global Privacy Control : nous le respectons, la vente ou le partage de vos données restent désactivés.";
    BackToChoices => "Back to your privacy choices", "Zurück zu Ihren Einstellungen", "Retour à vos choix";
    UnknownChoice => "This is not one of the choices offered.", "Das ist keine der angebotenen Möglichkeiten.", "Ce n'est pas l'un des choix proposés.";
    BadDate => "Give a date as YYYY-MM-DD, not after the end date.", "Geben Sie ein Datum als JJJJ-MM-TT an, nicht nach dem Enddatum.", "Indiquez une date au format AAAA-MM-JJ, pas après la date de fin.";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_choice_wins_then_the_best_quality() {
        assert_eq!(Lang::negotiate(Some("fr"), Some("de")), Lang::Fr);
        assert_eq!(
            Lang::negotiate(Some("xx"), Some("de-DE,de;q=0.9")),
            Lang::De
        );
        assert_eq!(
            Lang::negotiate(None, Some("es;q=1, fr;q=0.5, de;q=0.8")),
            Lang::De
        );
        assert_eq!(Lang::negotiate(None, Some("de;q=0, en-GB")), Lang::En);
        assert_eq!(Lang::negotiate(None, None), Lang::En);
        assert_eq!(Lang::negotiate(None, Some("fr-CA")), Lang::Fr);
    }

    #[test]
    fn every_message_has_three_distinct_nonempty_texts() {
        for m in M::ALL {
            for l in Lang::ALL {
                assert!(!m.text(l).trim().is_empty(), "{m:?} in {l:?}");
            }
            // Identical texts in all three languages usually mean an untranslated copy; the
            // few words that really are the same (Status) are listed.
            if !matches!(m, M::Status) {
                assert!(
                    m.text(Lang::En) != m.text(Lang::De) || m.text(Lang::En) != m.text(Lang::Fr),
                    "{m:?} looks untranslated"
                );
            }
        }
    }
}
