"""Generate `bench/data/it_tickets.csv`: a labelled, synthetic IT-support ticket set for the classifier benchmark.

    .venv/bin/python bench/data/make_tickets.py [--rows 2500] [--seed 20261123] [--out bench/data/it_tickets.csv]

Deterministic: the same arguments give the same file, byte for byte (one seeded `random.Random`, no set
iteration, no clock). Columns: ``title,body,category,intent``.

How a ticket is made:

1. a *scenario* is drawn by weight: an intent, the categories a service desk would file it under (several, with
   weights, when agents would honestly disagree: Outlook crashing is `email` for some and `software` for others),
   and hand-written English, German and French sentences with ``{a|b|c}`` alternatives and ``{slot}`` fillers;
2. the language (English 72 %, German 17 %, French 11 %), then the body: a greeting, maybe small talk, one or two
   sentences of the scenario, maybe details (asset tag, floor, since when), maybe an unrelated aside that names
   another domain ("PS: the printer on 2nd floor is out of toner too"), a closing and maybe a signature with phone
   numbers, "Sent from my iPhone" or "consider the environment before printing this e-mail";
3. the title: the scenario's own (often with RE:/FW:/AW:/TR:/[EXTERNAL] prefixes), a vague one ("Problem",
   "Hilfe", "Demande") or the start of the body; greeting, closing and signature are sometimes in another language;
4. typos in about a quarter of the tickets, some written all lower-case, a few almost empty ("see subject");
5. label noise: 5 % of the categories and 5 % of the intents are replaced by another label drawn uniformly,
   as happens when agents file tickets in a hurry.

The text is invented: names, numbers and addresses are made up and belong to nobody.
"""

from __future__ import annotations

import argparse
import csv
import random
import re
from dataclasses import dataclass
from pathlib import Path

LANGS = ("en", "de", "fr")
LANG_WEIGHTS = (0.72, 0.17, 0.11)
NOISE = 0.05

# --- slot fillers --------------------------------------------------------------------------------------------------

FIRST = ["Anna", "Thomas", "Julia", "Markus", "Sophie", "Lukas", "Camille", "Nicolas", "Emma", "Jonas", "Léa",
         "Pierre", "Sarah", "David", "Laura", "Michael", "Chloé", "Stefan", "Priya", "Ahmed", "Olga", "Marco",
         "Elena", "Tom", "Katrin", "Hugo", "Mia", "Yusuf", "Claire", "Ben", "Nora", "Felix", "Inès", "Raj"]  # fmt: skip
LAST = ["Müller", "Schmidt", "Dupont", "Martin", "Weber", "Bernard", "Fischer", "Smith", "Jones", "Meyer",
        "Lefebvre", "Wagner", "Moreau", "Becker", "Brown", "Hoffmann", "Laurent", "Schulz", "Patel", "Rossi",
        "Novak", "Girard", "Keller", "Kaya", "Taylor", "Fournier", "Wolf", "Roux", "Nguyen", "Lange"]  # fmt: skip
ROLES = ["Project Manager", "Sales Manager", "Accountant", "HR Business Partner", "Engineer", "Team Assistant",
         "Key Account Manager", "Controller", "Buyer", "Teamleiterin Einkauf", "Sachbearbeiter", "Chef de projet",
         "Assistante de direction", "Ingénieur qualité", "Head of Logistics", "Data Analyst"]  # fmt: skip
DEPTS = ["Finance", "Sales DACH", "Logistics", "HR", "Marketing", "Production", "Purchasing", "Legal",
         "R&D", "Customer Service", "Facility Management", "Controlling"]  # fmt: skip
COMPANY = ["Nordwind Logistics GmbH", "Acme Components SAS", "Helvetia Tools AG", "Brightline Ltd",
           "Rheinmetall Parts GmbH", "Atelier Lumière SARL"]  # fmt: skip

SLOTS: dict[str, list[str] | dict[str, list[str]]] = {
    "app": ["Excel", "Word", "PowerPoint", "Teams", "Adobe Acrobat", "AutoCAD", "Chrome", "Firefox", "SAP GUI",
            "Power BI", "Visual Studio Code", "SolidWorks", "Tableau", "the ERP client", "Edge", "Zoom"],
    "bizapp": ["SAP", "Salesforce", "Jira", "Confluence", "Workday", "the ERP", "DATEV", "ServiceNow", "Concur",
               "the CRM", "SharePoint", "the HR portal", "Sage", "the timesheet tool", "Navision"],
    "install_app": ["Visio", "MS Project", "Adobe Acrobat Pro", "Python", "Notepad++", "7-Zip", "Git",
                    "AutoCAD LT", "Tableau Desktop", "Power BI Desktop", "Snagit", "Miro", "R Studio",
                    "DBeaver", "Postman", "Camtasia", "Inkscape", "Node.js", "Docker Desktop", "WinSCP"],
    "device": ["laptop", "notebook", "PC", "ThinkPad", "Surface", "MacBook", "Dell Latitude", "workstation",
               "desktop", "HP EliteBook"],
    "peripheral": ["docking station", "second monitor", "keyboard", "mouse", "webcam", "charger", "USB-C hub",
                   "power adapter", "laptop battery", "presenter"],
    "printer": {
        "en": ["PRN-{d2}{d2}", "the printer on the {floor} floor", "the HP LaserJet in the copy room",
               "the Ricoh near reception", "the big Xerox", "Canon iR-ADV C5535", "the Kyocera in {room}",
               "printer {site3}-P{d2}", "the plotter"],
        "de": ["PRN-{d2}{d2}", "HP LaserJet M507", "Canon iR-ADV C5535", "Ricoh IM C3000", "{site3}-P{d2}",
               "Kyocera TASKalfa 3554ci"],
        "fr": ["PRN-{d2}{d2}", "HP LaserJet M507", "Canon iR-ADV C5535", "Ricoh IM C3000", "{site3}-P{d2}",
               "Kyocera TASKalfa 3554ci"],
    },
    "site": ["Munich", "Berlin", "Hamburg", "Lyon", "Paris", "Toulouse", "London", "Zurich", "Frankfurt", "Vienna",
             "the warehouse", "HQ", "Stuttgart", "Lille"],
    "room": ["Oslo", "Berlin", "Everest", "K2", "Rhein", "Seine", "Atlas", "Boardroom", "Aquarium", "Lobby",
             "R2.14", "B3.07", "training room 1"],
    "floor": ["1st", "2nd", "3rd", "4th", "5th", "ground"],
    "user": ["{u1}.{u2}", "{u1}{u2}", "{u2}_{u1}"],
    "u1": ["a", "t", "j", "m", "s", "l", "c", "n", "e", "p", "d", "k", "h", "r"],
    "u2": ["mueller", "schmidt", "dupont", "martin", "weber", "bernard", "fischer", "smith", "meyer", "wagner",
           "moreau", "becker", "patel", "rossi", "novak", "keller", "kaya", "roux", "lange"],
    "colleague": ["{first} {last}", "{first}", "Mr {last}", "Ms {last}", "Frau {last}", "Herr {last}",
                  "Mme {last}"],
    "first": FIRST,
    "last": LAST,
    "inc": ["INC00{d5}", "#{d5}", "ticket {d5}", "INC{d5}", "REQ00{d5}"],
    "asset": ["PC-{d5}", "NB{d5}", "LT-{site3}-{d4}", "{d6}"],
    "site3": ["MUC", "BER", "HAM", "LYS", "PAR", "TLS", "LON", "ZRH", "FRA", "VIE"],
    "phone": ["+49 89 {d4} {d3}", "+33 4 72 {d2} {d2} {d2}", "+44 20 {d4} {d4}", "+49 40 {d3}-{d3}",
              "+41 44 {d3} {d2} {d2}", "ext. {d4}", "0{d3} {d4}{d3}"],
    "mobile": ["+49 151 {d4}{d4}", "+49 170 {d3} {d4}", "+33 6 {d2} {d2} {d2} {d2}", "+44 7700 {d3}{d3}"],
    "ext": ["{d4}", "{d3}", "-{d4}"],
    "share": ["\\\\fs01\\{team}", "S:\\{team}", "the {team} share", "\\\\filesrv\\projects\\{project}",
              "the {team} SharePoint site", "G:\\{team}\\{project}", "P:\\{project}"],
    "team": ["Finance", "Sales", "Logistics", "HR", "Marketing", "Engineering", "Quality", "Purchasing", "Legal"],
    "project": ["Apollo", "Nordlicht", "Phoenix", "Helios", "Mistral", "Orion", "Falke", "Zenith", "Atlas2027"],
    "folder": ["Q3 reports", "Contracts 2026", "Angebote", "Budget", "Drawings_rev4", "Audit", "Kunden", "Devis"],
    "phone_model": ["iPhone 15", "iPhone 13", "Samsung Galaxy S23", "Galaxy A54", "Pixel 8", "iPhone SE"],
    "country": ["Nigeria", "Brazil", "Vietnam", "Russia", "the US", "Indonesia", "Romania"],
    "domain": ["{partner}.com", "{partner}.de", "{partner}.fr", "{partner}-group.com"],
    "partner": ["contoso", "fabrikam", "northwind", "tailspin", "litware", "adatum", "wingtip", "proseware"],
    "err_vpn": ["error 809", "error 720", "Connection attempt has failed", "The VPN connection failed due to "
                "unsuccessful domain name resolution", "Login failed", "Gateway not responding", "error -6",
                "certificate validation failure", "VPN establishment capability from a remote desktop is disabled",
                "error 412: remote peer no longer responding"],
    "err_sw": ["0xc0000142", "Application Error 1000", "Runtime error 429", "The application was unable to start "
               "correctly", "Not responding", "Out of memory", "License check failed", "ORA-12170: TNS connect "
               "timeout", "Error 1935", "Access violation at address 00A3F2"],
    "err_mail": ["550 5.1.1 User unknown", "554 5.7.1 Message rejected", "550 5.7.606 Access denied, banned "
                 "sending IP", "421 4.4.2 Connection dropped", "Delivery has failed to these recipients",
                 "552 5.2.2 Mailbox full", "550 5.7.708 Service unavailable"],
    "purpose": ["the new project", "reporting", "the customer audit", "drawings", "data analysis",
                "a training next week", "screen recordings", "process documentation"],
    "n": ["200", "500", "a lot of", "hundreds of", "about 1000", "50"],
    "gb": ["50", "100", "2", "10"],
    "d2": ["{d}{d}"],
    "d3": ["{d}{d}{d}"],
    "d4": ["{d}{d}{d}{d}"],
    "d5": ["{d}{d}{d}{d}{d}"],
    "d6": ["{d}{d}{d}{d}{d}{d}"],
    "d": list("0123456789"),
    "when": {
        "en": ["since this morning", "since yesterday", "after the update last night", "since Monday",
               "for two days now", "since I came back from holiday", "since the office move",
               "since about 10 o'clock", "again today", "since last week"],
        "de": ["seit heute Morgen", "seit gestern", "seit dem Update gestern Abend", "seit Montag",
               "seit zwei Tagen", "seit meinem Urlaub", "seit dem Umzug", "seit ca. 10 Uhr", "heute schon wieder"],
        "fr": ["depuis ce matin", "depuis hier", "depuis la mise à jour d'hier soir", "depuis lundi",
               "depuis deux jours", "depuis mon retour de congés", "depuis le déménagement", "encore aujourd'hui"],
    },
    "day": {
        "en": ["Monday", "Tuesday", "the 1st", "next week", "Thursday", "the 15th", "tomorrow"],
        "de": ["Montag", "Dienstag", "dem 1.", "nächster Woche", "Donnerstag", "morgen"],
        "fr": ["lundi", "mardi", "le 1er", "la semaine prochaine", "jeudi", "demain"],
    },
    "floor_de": ["EG", "1. OG", "2. OG", "3. OG", "4. OG"],
    "floor_fr": ["rez-de-chaussée", "1er étage", "2e étage", "3e étage", "4e étage"],
}  # fmt: skip


@dataclass(frozen=True)
class Scenario:
    intent: str
    categories: dict[str, float]
    weight: float
    titles: dict[str, list[str]]
    core: dict[str, list[str]]


def S(intent: str, categories: dict[str, float] | str, weight: float, titles: dict, core: dict) -> Scenario:
    cats = {categories: 1.0} if isinstance(categories, str) else categories
    return Scenario(intent, cats, weight, titles, core)


# --- scenarios: intent, category (weights when agents disagree), relative frequency, titles and sentences --------

SCENARIOS: list[Scenario] = [
    # ---------------------------------------------------------------- access
    S("password_reset", "access", 9, {
        "en": ["Password reset", "{Forgot|Forgotten} password", "Reset my password please", "Password expired",
               "can't log in", "Need new password for {bizapp}", "login problem", "Windows password",
               "password not accepted", "new initial password"],
        "de": ["Passwort vergessen", "Kennwort zurücksetzen", "Passwort abgelaufen", "Anmeldung nicht möglich"],
        "fr": ["Mot de passe oublié", "Réinitialisation mot de passe", "MDP expiré", "Impossible de me connecter"],
    }, {
        "en": ["I forgot my {Windows|network|domain|computer} password {after the holidays|over the weekend|again}. "
               "Can you {reset it|set a temporary one|help me reset it}?",
               "My password expired {this morning|overnight|today} and the change screen {keeps saying the new one "
               "does not meet the requirements|does not accept anything|just loops back to the login}.",
               "Please reset the password for my {bizapp} account, user {user}.",
               "I changed my password {yesterday|on Friday} and now I {can't|cannot} remember the new one.",
               "The self-service password portal {doesn't send me the SMS code|says my security answers are "
               "wrong|shows an error}, so I need you to reset my password.",
               "Could you send a new initial password for {colleague}? {She|He} starts {today|on Monday} and the "
               "one in the welcome letter does not work.",
               "I {can't|cannot} log in to {bizapp}, it says username or password incorrect. I'm sure the user "
               "is right so I guess I need a new password.",
               "I need my password reset, I am at {site} without my notes and can't remember it."],
        "de": ["Ich habe mein {Windows-|}Passwort vergessen. Könnt ihr es bitte zurücksetzen?",
               "Mein Kennwort ist {heute Morgen|übers Wochenende} abgelaufen und ich kann {mich nicht mehr "
               "anmelden|kein neues setzen}.",
               "Bitte das Passwort für {bizapp} zurücksetzen, Benutzer {user}.",
               "Das Self-Service-Portal schickt mir keinen SMS-Code, ich brauche ein neues Passwort."],
        "fr": ["J'ai oublié mon mot de passe {Windows|de session}, pouvez-vous le réinitialiser ?",
               "Mon mot de passe a expiré {ce matin|ce week-end} et je n'arrive pas à en définir un nouveau.",
               "Merci de réinitialiser le mot de passe de mon compte {bizapp} (utilisateur {user}).",
               "Le portail de réinitialisation ne m'envoie pas de code, pouvez-vous me donner un nouveau mot de "
               "passe ?"],
    }),
    S("password_reset", {"telephony": 0.6, "access": 0.4}, 1.2, {
        "en": ["Voicemail PIN", "forgot voicemail PIN", "PIN reset for my phone"],
        "de": ["Mailbox-PIN vergessen", "PIN für Anrufbeantworter"],
        "fr": ["Code messagerie vocale oublié", "PIN répondeur"],
    }, {
        "en": ["I forgot the PIN of my voicemail and can't listen to my messages. Could you reset it?",
               "My desk phone asks for a PIN to log in {when} and I never set one. Can you reset it?",
               "Please reset my voicemail password, extension {ext}."],
        "de": ["Ich habe die PIN für meine Sprachbox vergessen, bitte zurücksetzen. Durchwahl {ext}.",
               "Das Telefon verlangt eine PIN zur Anmeldung, die ich nicht kenne."],
        "fr": ["J'ai oublié le code de ma messagerie vocale, pouvez-vous le réinitialiser ? Poste {ext}."],
    }),
    S("password_reset", {"email": 0.55, "access": 0.45}, 1.5, {
        "en": ["Outlook keeps asking for password", "password prompt", "webmail login not working"],
        "de": ["Outlook fragt ständig nach Kennwort", "Kennwortabfrage"],
        "fr": ["Outlook demande sans cesse le mot de passe"],
    }, {
        "en": ["Since I changed my password, Outlook {keeps asking|asks every five minutes} for it and doesn't "
               "accept the new one.",
               "I can't log in to webmail from home, it says my password is wrong, but it works on my laptop.",
               "The mail app on my phone wants the password again and rejects it."],
        "de": ["Seit der Kennwortänderung fragt Outlook ständig nach dem Passwort und nimmt das neue nicht an."],
        "fr": ["Depuis que j'ai changé mon mot de passe, Outlook me le redemande sans arrêt."],
    }),
    S("account_unlock", "access", 6, {
        "en": ["Account locked", "locked out", "Please unlock my account", "user locked", "Account locked again",
               "can't log in - locked"],
        "de": ["Konto gesperrt", "Benutzer gesperrt", "Account entsperren"],
        "fr": ["Compte verrouillé", "Compte bloqué", "Déverrouillage compte"],
    }, {
        "en": ["My account is locked {again|}. {I think my phone still has the old password.|No idea why.|}",
               "I locked myself out of {Windows|my laptop|SAP|the VPN} after too many attempts. Please unlock.",
               "It says 'The referenced account is currently locked out'. Can you unlock user {user}?",
               "My user gets locked every {hour|morning|few minutes} {when}. Please unlock it and check why.",
               "{colleague} is locked out and can't work, could you unlock {her|his} account asap?",
               "Tried my password a few times too many, now the account is blocked."],
        "de": ["Mein Konto ist gesperrt, bitte entsperren. Benutzer {user}.",
               "Nach mehreren Fehlversuchen ist mein Account gesperrt.",
               "Ich werde {seit gestern|ständig} gesperrt, bitte entsperren und prüfen."],
        "fr": ["Mon compte est verrouillé, pouvez-vous le débloquer ? Utilisateur {user}.",
               "Après plusieurs tentatives mon compte est bloqué.",
               "Mon compte se verrouille tout le temps {when}."],
    }),
    S("account_unlock", {"security": 0.5, "access": 0.5}, 1, {
        "en": ["Suspicious sign-in - account locked", "account blocked for security reasons", "sign-in alert"],
        "de": ["Konto wegen verdächtiger Anmeldung gesperrt"],
        "fr": ["Compte bloqué suite à connexion suspecte"],
    }, {
        "en": ["I got a message that my account was locked because of a sign-in attempt from {country}. It wasn't "
               "me. Can you unlock it?",
               "Microsoft says unusual sign-in activity and blocked my account. I was just at the airport in "
               "{site}.",
               "My account was disabled after a risky sign-in alert, I need it back to work."],
        "de": ["Mein Konto wurde nach einer Anmeldung aus {country} gesperrt. Das war ich nicht, bitte entsperren."],
        "fr": ["Mon compte a été bloqué après une connexion depuis {country}, ce n'était pas moi."],
    }),
    S("access_request", "access", 6, {
        "en": ["Access request", "Access to {bizapp}", "Need permissions", "New role - access rights",
               "please grant access", "rights for {bizapp}"],
        "de": ["Berechtigung {bizapp}", "Zugriff beantragen", "Zugang zu {bizapp}"],
        "fr": ["Demande d'accès", "Accès {bizapp}", "Droits d'accès"],
    }, {
        "en": ["Could you give me access to {bizapp}? My manager {colleague} has approved it.",
               "I need {read|read-only|admin|editor} rights in {bizapp} for the {project} project.",
               "I'm moving to {team} on {day}, I need the same permissions as {colleague}.",
               "Please add {colleague} to the AD group GRP-{team}-{project}.",
               "I don't see the {team} space in {bizapp}, can you grant me access?",
               "Our new intern needs an account for {bizapp}, approved by {colleague}."],
        "de": ["Bitte Berechtigung für {bizapp} einrichten, Genehmigung von {colleague} liegt vor.",
               "Ich wechsle zu {team} und brauche die gleichen Rechte wie {colleague}.",
               "Bitte Zugriff auf {bizapp} für das Projekt {project}."],
        "fr": ["Pourriez-vous me donner accès à {bizapp} ? Mon responsable a validé.",
               "J'ai besoin des droits {lecture|écriture|admin} sur {bizapp} pour le projet {project}.",
               "Merci de créer un compte {bizapp} pour notre stagiaire."],
    }),
    S("access_request", {"storage": 0.5, "access": 0.5}, 2.5, {
        "en": ["Permission on share", "access to {share}", "folder permissions", "write access needed"],
        "de": ["Zugriff auf Laufwerk", "Ordnerberechtigung", "Schreibrechte {share}"],
        "fr": ["Accès au dossier partagé", "Droits sur le partage"],
    }, {
        "en": ["I need write permission on {share}, I can only read.",
               "Please give {colleague} access to the folder {folder} on {share}.",
               "Access denied when I open {share}. I should have access as member of {team}."],
        "de": ["Ich brauche Schreibrechte auf {share}, bisher nur Lesezugriff.",
               "Zugriff verweigert auf {share}, bitte Berechtigung prüfen."],
        "fr": ["Accès refusé sur {share}, pouvez-vous me donner les droits ?"],
    }),
    # ---------------------------------------------------------------- network
    S("vpn_access", "network", 6, {
        "en": ["VPN not working", "VPN issue", "Cannot connect to VPN", "VPN keeps dropping", "remote connection",
               "{AnyConnect|GlobalProtect|FortiClient} error", "home office - no connection"],
        "de": ["VPN geht nicht", "VPN-Verbindung bricht ab", "Keine Verbindung im Homeoffice"],
        "fr": ["VPN ne fonctionne pas", "Problème VPN", "Connexion à distance impossible"],
    }, {
        "en": ["The VPN {doesn't|won't} connect {when}, it shows '{err_vpn}'.",
               "Working from home {today|this week} and the VPN {drops every few minutes|connects but I can't "
               "reach anything|times out}.",
               "{AnyConnect|GlobalProtect|FortiClient} says '{err_vpn}' as soon as I log in.",
               "I can connect to the VPN but {the intranet|network drives|SAP|the file server} {won't load|is not "
               "reachable}.",
               "Hotel wifi works fine but the VPN tunnel never comes up.",
               "Remote access stopped working after I changed my password, it keeps saying login failed."],
        "de": ["Die VPN-Verbindung bricht {ständig|alle paar Minuten} ab.",
               "Im Homeoffice kann ich mich nicht per VPN verbinden, Fehler '{err_vpn}'.",
               "VPN verbunden, aber die Laufwerke und SAP sind nicht erreichbar."],
        "fr": ["Le VPN ne se connecte plus {when}, message '{err_vpn}'.",
               "Impossible de me connecter au VPN en télétravail.",
               "Le VPN se coupe toutes les dix minutes."],
    }),
    S("vpn_access", {"access": 0.6, "network": 0.4}, 2, {
        "en": ["VPN account needed", "Remote access request", "token expired", "VPN for new employee"],
        "de": ["VPN-Zugang beantragen", "Token abgelaufen"],
        "fr": ["Demande d'accès VPN", "Jeton expiré"],
    }, {
        "en": ["I need remote access so I can work from home on {day|Fridays}; {colleague} approved it.",
               "My {RSA|MFA|soft} token expired, I can't log in from outside anymore.",
               "Please enable VPN for {colleague}, {she|he} starts working remotely next week.",
               "Could my VPN profile be extended? It says my access expires at the end of the month."],
        "de": ["Bitte VPN-Zugang für {colleague} einrichten, Homeoffice ab {day}.",
               "Mein Token ist abgelaufen, ich komme von außen nicht mehr rein."],
        "fr": ["Pourriez-vous activer l'accès VPN pour {colleague} ? Télétravail à partir de {day}."],
    }),
    S("network_connectivity", "network", 6, {
        "en": ["Wifi not working", "No internet", "Network very slow", "Network port dead", "LAN issue",
               "wifi drops", "Guest wifi", "no connection in {room}"],
        "de": ["WLAN geht nicht", "Kein Netzwerk", "Internet langsam", "Netzwerkdose defekt"],
        "fr": ["Wifi HS", "Pas de réseau", "Internet très lent", "Prise réseau ne marche pas"],
    }, {
        "en": ["The wifi {keeps dropping|is extremely slow|disconnects every few minutes} in meeting room {room}.",
               "No internet on my {device} {when}, the network icon shows a globe.",
               "The network port at my desk seems dead, nothing happens when I plug in the cable.",
               "Everything is very slow on the {floor} floor, web pages take ages to load.",
               "Our visitors can't connect to the guest wifi, the login page doesn't load.",
               "Intranet pages don't resolve but the IP address works. DNS problem?",
               "The whole {team} team at {site} has no network {when}."],
        "de": ["Das WLAN im {floor_de} {bricht ständig ab|ist extrem langsam}.",
               "Kein Internet am Arbeitsplatz {when}.",
               "Die Netzwerkdose an meinem Platz funktioniert nicht."],
        "fr": ["Le wifi ne fonctionne pas en salle {room}.",
               "Pas de réseau sur mon poste {when}.",
               "La connexion internet est très lente au {floor_fr}."],
    }),
    S("network_connectivity", {"hardware": 0.5, "network": 0.5}, 1.5, {
        "en": ["laptop doesn't see wifi", "network adapter missing", "ethernet on dock not working"],
        "de": ["Laptop findet kein WLAN mehr"],
        "fr": ["Le portable ne détecte plus le wifi"],
    }, {
        "en": ["My {device} doesn't see any wifi networks anymore since it fell off the desk.",
               "The network adapter disappeared from device manager, no wifi and no cable.",
               "The ethernet port on my docking station stopped working, wifi still works."],
        "de": ["Mein {device} findet kein WLAN mehr, seit er runtergefallen ist."],
        "fr": ["Mon {device} ne détecte plus aucun réseau wifi."],
    }),
    # ---------------------------------------------------------------- hardware
    S("new_laptop", "hardware", 5, {
        "en": ["New laptop request", "Laptop replacement", "Equipment for new starter", "hardware order",
               "need a new {device}", "laptop refresh"],
        "de": ["Neuer Laptop", "Hardware für neuen Mitarbeiter", "Austausch Notebook"],
        "fr": ["Demande de PC portable", "Matériel pour nouvel arrivant", "Remplacement ordinateur"],
    }, {
        "en": ["My {device} is {five|six|seven} years old and {painfully slow|the battery lasts 20 minutes}. "
               "Can I get a replacement?",
               "New colleague {colleague} starts on {day}, we need a laptop, a docking station and two monitors.",
               "I'd like to order a {lighter laptop|MacBook|15 inch laptop} for travelling; my manager agreed.",
               "When is my laptop refresh scheduled? I got a mail about the hardware renewal program.",
               "Please prepare a {device} for our apprentice starting {day}.",
               "My current laptop was damaged beyond repair, I need a new one as soon as possible."],
        "de": ["Neuer Mitarbeiter ab {day}, wir brauchen bitte Laptop, Docking Station und Monitor.",
               "Mein Notebook ist sehr alt und langsam, ich hätte gern einen Austausch.",
               "Bitte einen {device} für unsere Praktikantin vorbereiten."],
        "fr": ["Un nouvel arrivant commence {day}, il lui faut un PC portable et un écran.",
               "Mon ordinateur est trop lent, je souhaiterais un remplacement.",
               "Pourriez-vous préparer un {device} pour notre alternant ?"],
    }),
    S("hardware_fault", "hardware", 7, {
        "en": ["{peripheral} broken", "Screen flickering", "Laptop won't turn on", "Keyboard not working",
               "monitor not detected", "hardware problem", "laptop overheating", "broken {peripheral}"],
        "de": ["Bildschirm flackert", "Tastatur defekt", "Laptop startet nicht", "Monitor wird nicht erkannt"],
        "fr": ["Écran noir", "Clavier cassé", "Le PC ne démarre plus", "Écran non détecté"],
    }, {
        "en": ["The {peripheral} {stopped working|is broken|doesn't work anymore} {when}.",
               "My screen {flickers|has a black line across it|stays black} {when}.",
               "I spilled {coffee|tea|water} on my keyboard, some keys don't work anymore.",
               "The laptop won't {turn on|boot}, the power light blinks {orange|white} three times.",
               "The battery seems swollen, the touchpad is lifting up.",
               "The second monitor isn't detected when I connect through the docking station.",
               "The fan is really loud and the {device} gets very hot, then shuts down.",
               "The {device} makes a clicking noise and then shows 'no bootable device'."],
        "de": ["Mein Bildschirm flackert {when}.",
               "Kaffee über die Tastatur gekippt, einige Tasten gehen nicht mehr.",
               "Der Laptop startet nicht mehr, die LED blinkt orange.",
               "Die Docking Station erkennt den zweiten Monitor nicht."],
        "fr": ["Mon écran reste noir {when}.",
               "J'ai renversé du café sur le clavier, certaines touches ne marchent plus.",
               "Le PC portable ne démarre plus, le voyant clignote.",
               "La station d'accueil ne reconnaît pas le deuxième écran."],
    }),
    S("hardware_fault", {"telephony": 0.6, "hardware": 0.4}, 1.5, {
        "en": ["Headset broken", "Phone screen cracked", "headset mic not working"],
        "de": ["Headset kaputt", "Handy Display gesprungen"],
        "fr": ["Casque cassé", "Écran du portable fissuré"],
    }, {
        "en": ["The microphone of my headset doesn't work anymore, people can't hear me in calls.",
               "The screen of my company {phone_model} is cracked, the touch doesn't react at the bottom.",
               "The cable of my headset is broken, can I get a new one?"],
        "de": ["Mein Headset ist kaputt, man hört mich im Gespräch nicht.",
               "Das Display meines Diensthandys ({phone_model}) ist gesprungen."],
        "fr": ["Le micro de mon casque ne fonctionne plus.", "L'écran de mon {phone_model} professionnel est cassé."],
    }),
    # ---------------------------------------------------------------- software
    S("software_install", "software", 6, {
        "en": ["Software installation", "Install {install_app}", "Licence request", "software request",
               "{install_app} licence", "Need {install_app}"],
        "de": ["Softwareinstallation", "{install_app} installieren", "Lizenz {install_app}"],
        "fr": ["Installation logiciel", "Installer {install_app}", "Licence {install_app}"],
    }, {
        "en": ["Could you install {install_app} on my {device}? I need it for {purpose}.",
               "I need a licence for {install_app}, the trial has expired.",
               "{install_app} isn't in the software center for me, can you {push|deploy|make} it available?",
               "I don't have admin rights to install {install_app}, can someone do it remotely?",
               "Is {install_app} approved software? I'd like to use it for {purpose}.",
               "Please upgrade {install_app} to the latest version, the old one can't open the files from "
               "{partner}."],
        "de": ["Bitte {install_app} auf meinem {device} installieren, ich brauche es für {purpose}.",
               "Ich benötige eine Lizenz für {install_app}.",
               "Mir fehlen Adminrechte, um {install_app} zu installieren."],
        "fr": ["Pouvez-vous installer {install_app} sur mon poste ?", "J'ai besoin d'une licence {install_app}.",
               "Je n'ai pas les droits admin pour installer {install_app}."],
    }),
    S("software_install", {"telephony": 0.5, "software": 0.5}, 1, {
        "en": ["Softphone installation", "Install phone app", "Webex for calls"],
        "de": ["Softphone installieren"],
        "fr": ["Installer le softphone"],
    }, {
        "en": ["Please install the softphone client so I can take calls on my laptop.",
               "I need the {Webex|Jabber|3CX} app to make calls while working from home."],
        "de": ["Bitte Softphone-Client installieren, damit ich im Homeoffice telefonieren kann."],
        "fr": ["Merci d'installer le softphone pour que je puisse téléphoner depuis mon PC."],
    }),
    S("software_error", "software", 8, {
        "en": ["{app} crashes", "{app} not responding", "Error in {bizapp}", "{bizapp} very slow",
               "Application error", "{app} won't start", "problem with {app}"],
        "de": ["{app} stürzt ab", "Fehler in {bizapp}", "{app} startet nicht"],
        "fr": ["{app} plante", "Erreur {bizapp}", "{app} ne démarre plus"],
    }, {
        "en": ["{app} {crashes|freezes|closes itself} {when} when I {open|save|export} {files|reports|drawings}.",
               "I get '{err_sw}' when starting {app}.",
               "{bizapp} is extremely slow today, every transaction takes minutes.",
               "After the Windows update {app} won't start anymore.",
               "Excel macros stopped working, there is a message about blocked content.",
               "The {bizapp} export to PDF gives an empty file.",
               "{app} shows '{err_sw}' and then nothing happens.",
               "Since the update {bizapp} logs me out every few minutes and I lose my work."],
        "de": ["{app} stürzt {ständig|immer wieder} ab, wenn ich Dateien speichere.",
               "Beim Start von {app} kommt die Fehlermeldung '{err_sw}'.",
               "{bizapp} ist heute extrem langsam."],
        "fr": ["{app} plante au démarrage {when}.", "Message d'erreur dans {bizapp} : '{err_sw}'.",
               "{bizapp} est extrêmement lent aujourd'hui."],
    }),
    S("software_error", {"email": 0.6, "software": 0.4}, 2, {
        "en": ["Outlook crashes", "Outlook search not working", "Calendar not syncing", "Outlook not responding"],
        "de": ["Outlook stürzt ab", "Kalender synchronisiert nicht"],
        "fr": ["Outlook plante", "Le calendrier ne se synchronise plus"],
    }, {
        "en": ["Outlook {crashes|freezes} every time I open {a calendar invite|an attachment|a shared calendar}.",
               "The search in Outlook doesn't find anything older than a week.",
               "My calendar on the phone doesn't show new meetings anymore.",
               "Outlook starts in safe mode only and the add-ins are gone."],
        "de": ["Outlook hängt sich beim Öffnen von Anhängen auf.", "Die Suche in Outlook findet nichts mehr."],
        "fr": ["Outlook se fige quand j'ouvre une pièce jointe."],
    }),
    S("software_error", {"telephony": 0.5, "software": 0.5}, 1.5, {
        "en": ["Teams calls dropping", "No audio in Teams", "Teams phone issue"],
        "de": ["Teams Anrufe brechen ab", "Kein Ton in Teams"],
        "fr": ["Appels Teams coupés", "Pas de son dans Teams"],
    }, {
        "en": ["Teams calls drop after a few minutes {when}, chat works.",
               "In Teams calls nobody hears me although the mic works in other apps.",
               "I can't receive external calls in Teams anymore, it goes straight to voicemail."],
        "de": ["Teams-Anrufe brechen nach ein paar Minuten ab.", "In Teams-Telefonaten hört mich niemand."],
        "fr": ["Les appels Teams se coupent au bout de quelques minutes."],
    }),
    # ---------------------------------------------------------------- printing
    S("printer_jam", "printing", 5, {
        "en": ["Paper jam", "Printer jammed", "Toner empty", "printer out of order", "copier broken",
               "printing streaks"],
        "de": ["Papierstau", "Toner leer", "Drucker defekt", "Kopierer kaputt"],
        "fr": ["Bourrage papier", "Plus de toner", "Imprimante en panne", "Copieur HS"],
    }, {
        "en": ["Paper jam in {printer}, {I opened all trays but can't see anything|it keeps saying jam in area "
               "B|the sheet tore and a piece is stuck}.",
               "{printer} is out of toner {again|}, the {black|cyan|magenta} cartridge.",
               "{printer} prints {streaks|faded pages|blank pages} {when}.",
               "The copier on the {floor} floor makes a grinding noise and crumples every sheet.",
               "{printer} shows error SC542 and won't print."],
        "de": ["Papierstau im Drucker {printer}, ich finde das Blatt nicht.",
               "Der Toner im Kopierer im {floor_de} ist leer.",
               "Der Drucker druckt nur noch Streifen."],
        "fr": ["Bourrage papier sur l'imprimante {printer}.", "Plus de toner dans le copieur du {floor_fr}.",
               "L'imprimante sort des pages blanches."],
    }),
    S("printer_setup", "printing", 4, {
        "en": ["Add printer", "Printer driver", "Print queue stuck", "can't print", "printing not possible",
               "default printer"],
        "de": ["Drucker einrichten", "Druckertreiber", "Drucken nicht möglich"],
        "fr": ["Installer une imprimante", "Impossible d'imprimer", "File d'impression bloquée"],
    }, {
        "en": ["How do I add {printer} on my {device}?",
               "My print jobs stay in the queue and never come out.",
               "Installing the driver for {printer} asks for admin rights.",
               "I can't print to {printer} anymore {when}, it says the printer is offline.",
               "After the office move I can't find the printer near my desk in the list."],
        "de": ["Wie richte ich den Drucker {printer} ein?", "Meine Druckaufträge bleiben in der Warteschlange hängen.",
               "Ich kann {when} nicht mehr drucken, Drucker offline."],
        "fr": ["Comment ajouter l'imprimante du {floor_fr} ?",
               "Mes impressions restent bloquées dans la file d'attente.",
               "Je ne peux plus imprimer {when}, l'imprimante est hors ligne."],
    }),
    S("printer_setup", {"printing": 0.6, "email": 0.4}, 1.5, {
        "en": ["Scan to email not working", "Scanner doesn't send mail"],
        "de": ["Scan to Mail geht nicht"],
        "fr": ["Scan vers mail ne fonctionne pas"],
    }, {
        "en": ["Scan to email on {printer} stopped working, nothing arrives in my inbox.",
               "When I scan to my address at the copier it says 'send error'."],
        "de": ["Scannen an E-Mail am Kopierer funktioniert nicht mehr, nichts kommt an."],
        "fr": ["Le scan vers e-mail du copieur ne fonctionne plus."],
    }),
    # ---------------------------------------------------------------- email
    S("mailbox_full", "email", 4, {
        "en": ["Mailbox full", "Mailbox almost full", "Increase mailbox size", "quota exceeded", "archive mails"],
        "de": ["Postfach voll", "Postfachgröße erhöhen", "Speicherplatz Postfach"],
        "fr": ["Boîte mail pleine", "Quota messagerie dépassé", "Augmenter la taille de ma boîte"],
    }, {
        "en": ["I keep getting 'your mailbox is almost full' warnings, can you increase my quota?",
               "My mailbox is full and I can't send anything. I already deleted {n} emails.",
               "People tell me their mails to me bounce with '552 5.2.2 Mailbox full'.",
               "Outlook says I'm over the {gb} GB limit. Can we archive my old mails?",
               "Can I get an online archive? My inbox is at 99%."],
        "de": ["Mein Postfach ist voll, ich kann keine Mails mehr senden.",
               "Bitte das Postfach vergrößern, ich bekomme ständig Warnungen.",
               "Outlook meldet, dass das Postfach das Limit von {gb} GB erreicht hat."],
        "fr": ["Ma boîte aux lettres est pleine, je ne peux plus envoyer de mails.",
               "Pouvez-vous augmenter mon quota de messagerie ?",
               "Outlook indique que ma boîte a atteint la limite de {gb} Go."],
    }),
    S("email_delivery", "email", 5, {
        "en": ["Emails bouncing", "Not receiving emails", "Undeliverable", "Mail to {domain} fails",
               "out of office not working", "emails in junk", "distribution list"],
        "de": ["E-Mails kommen nicht an", "Unzustellbar", "Abwesenheitsnotiz", "Verteiler"],
        "fr": ["Mails non reçus", "Non remis", "Réponse automatique", "Liste de diffusion"],
    }, {
        "en": ["Emails to {domain} bounce with '{err_mail}'.",
               "I'm not receiving external emails {when}, internal ones arrive.",
               "My out-of-office reply is not being sent to external senders.",
               "Mails from our customer {domain} land in quarantine.",
               "Please add {colleague} to the distribution list DL-{team}.",
               "A customer says my emails never reach them, no error on my side."],
        "de": ["E-Mails an {domain} kommen zurück mit '{err_mail}'.",
               "Ich bekomme {when} keine externen Mails mehr.",
               "Bitte {colleague} in den Verteiler DL-{team} aufnehmen."],
        "fr": ["Les mails vers {domain} reviennent avec '{err_mail}'.",
               "Je ne reçois plus les mails externes {when}.",
               "Merci d'ajouter {colleague} à la liste de diffusion DL-{team}."],
    }),
    S("email_delivery", {"email": 0.7, "access": 0.3}, 1.5, {
        "en": ["Shared mailbox access", "New shared mailbox", "add me to shared mailbox"],
        "de": ["Zugriff auf Sammelpostfach", "Funktionspostfach anlegen"],
        "fr": ["Accès boîte partagée"],
    }, {
        "en": ["Please give me full access to the {team} shared mailbox.",
               "We need a new shared mailbox {project}@ for the project team, owner {colleague}.",
               "I can't send as the {team} mailbox anymore, it says I don't have permission."],
        "de": ["Bitte Zugriff auf das Sammelpostfach {team} einrichten."],
        "fr": ["Pouvez-vous me donner accès à la boîte partagée {team} ?"],
    }),
    # ---------------------------------------------------------------- security
    S("phishing_report", "security", 4, {
        "en": ["Suspicious email", "Phishing?", "Possible phishing", "Clicked a link", "Fake invoice mail",
               "CEO fraud attempt", "Is this mail legit?"],
        "de": ["Verdächtige E-Mail", "Phishing?", "Link angeklickt"],
        "fr": ["Mail suspect", "Hameçonnage ?", "J'ai cliqué sur un lien"],
    }, {
        "en": ["I received a suspicious email from 'IT Support <it-desk@{domain}>' asking me to {verify my "
               "account|confirm my password|open a shared document}. I didn't click anything.",
               "I think I clicked on a phishing link {this morning|just now} and typed my password. What should I "
               "do?",
               "Forwarding this one, it looks like phishing: an invoice from {partner} with a zip attachment.",
               "Someone pretending to be our CEO asked me by mail to buy gift cards urgently.",
               "Got a DocuSign request I wasn't expecting, the link goes to a strange site.",
               "Several people in {team} got the same mail with a fake Microsoft login page."],
        "de": ["Ich habe eine verdächtige E-Mail mit einer Rechnung von {partner} bekommen, Anhang nicht geöffnet.",
               "Ich habe vermutlich auf einen Phishing-Link geklickt und mein Passwort eingegeben.",
               "Jemand gibt sich als Geschäftsführer aus und will Gutscheinkarten."],
        "fr": ["J'ai reçu un mail suspect qui me demande de confirmer mon mot de passe.",
               "Je crois avoir cliqué sur un lien d'hameçonnage ce matin.",
               "Un faux mail du directeur demande des cartes cadeaux."],
    }),
    S("phishing_report", {"email": 0.5, "security": 0.5}, 1.2, {
        "en": ["Lots of spam", "Spam flood", "junk mail"],
        "de": ["Viel Spam", "Spam-Mails"],
        "fr": ["Beaucoup de spam", "Pourriels"],
    }, {
        "en": ["I'm getting {dozens|hundreds} of spam mails {when}, can the filter be tightened?",
               "Newsletters and fake offers flood my inbox, can you block the sender {domain}?"],
        "de": ["Ich bekomme {when} massenhaft Spam, bitte Filter anpassen."],
        "fr": ["Je reçois énormément de spam {when}."],
    }),
    S("malware_alert", "security", 2.5, {
        "en": ["Virus alert", "Defender warning", "Ransomware?", "Found USB stick", "browser hijacked",
               "security alert on my PC"],
        "de": ["Virenwarnung", "Defender meldet Bedrohung", "USB-Stick gefunden"],
        "fr": ["Alerte virus", "Antivirus a détecté une menace", "Clé USB trouvée"],
    }, {
        "en": ["Defender popped up saying a threat was found and quarantined on my {device}. Is it safe?",
               "My browser keeps opening ad pages and the start page changed by itself.",
               "Files on {share} suddenly end with .locked and there's a readme note asking for bitcoin.",
               "I found a USB stick in the car park labelled 'Salaries 2026', what should I do with it?",
               "The antivirus says it's disabled and I can't turn it on."],
        "de": ["Defender meldet eine Bedrohung auf meinem {device}.", "Ich habe einen USB-Stick auf dem Parkplatz "
               "gefunden.", "Dateien auf {share} haben plötzlich die Endung .locked."],
        "fr": ["L'antivirus a détecté une menace sur mon poste.", "J'ai trouvé une clé USB sur le parking.",
               "Mon navigateur ouvre des pubs tout seul."],
    }),
    S("lost_device", {"security": 0.6, "hardware": 0.25, "telephony": 0.15}, 2, {
        "en": ["Lost laptop", "Phone stolen", "Lost company phone", "Laptop stolen from car"],
        "de": ["Laptop verloren", "Handy gestohlen", "Diensthandy verloren"],
        "fr": ["PC portable perdu", "Téléphone volé", "Portable professionnel perdu"],
    }, {
        "en": ["I lost my company {phone_model} on the train {when}. Can you wipe it and block the SIM?",
               "My {device} was stolen from my car last night, I filed a police report.",
               "I left my laptop bag in a taxi in {site}, the laptop is encrypted I think.",
               "My badge and my phone were stolen, please lock everything."],
        "de": ["Mein Diensthandy ({phone_model}) ist weg, bitte sperren und löschen.",
               "Mein {device} wurde aus dem Auto gestohlen."],
        "fr": ["J'ai perdu mon {phone_model} professionnel dans le train.", "On m'a volé mon {device}."],
    }),
    # ---------------------------------------------------------------- telephony
    S("phone_issue", "telephony", 4, {
        "en": ["Desk phone not working", "Call forwarding", "No dial tone", "Voicemail issue", "SIM blocked",
               "mobile no signal", "new SIM card"],
        "de": ["Telefon geht nicht", "Rufumleitung", "SIM gesperrt", "Kein Freizeichen"],
        "fr": ["Téléphone fixe HS", "Renvoi d'appel", "Carte SIM bloquée", "Pas de tonalité"],
    }, {
        "en": ["My desk phone shows '{No service|Registering...|Network unavailable}' {when}.",
               "I can't hear the caller, they can hear me. Happens on every call.",
               "Please forward my extension {ext} to my mobile while I'm {travelling|on leave|at {site}}.",
               "The voicemail light keeps blinking but there are no messages.",
               "My SIM is blocked, the phone asks for the PUK.",
               "I need a new SIM card (eSIM) for my new {phone_model}.",
               "The conference phone in {room} has no dial tone."],
        "de": ["Mein Tischtelefon zeigt {when} 'Keine Verbindung'.", "Bitte Rufumleitung von {ext} auf mein "
               "Handy einrichten.", "Meine SIM-Karte ist gesperrt, das Handy will die PUK."],
        "fr": ["Mon téléphone fixe ne fonctionne plus {when}.", "Pouvez-vous renvoyer mon poste {ext} vers mon "
               "portable ?", "Ma carte SIM est bloquée, il me demande le code PUK."],
    }),
    # ---------------------------------------------------------------- storage
    S("file_restore", "storage", 3, {
        "en": ["Restore deleted file", "File restore", "Accidentally deleted folder", "need previous version",
               "file disappeared"],
        "de": ["Datei wiederherstellen", "Ordner gelöscht", "Wiederherstellung aus Backup"],
        "fr": ["Restauration fichier", "Dossier supprimé par erreur", "Version précédente"],
    }, {
        "en": ["I accidentally deleted the folder '{folder}' on {share}. Can you restore it from yesterday's "
               "backup?",
               "I overwrote an Excel file on {share}, I need the version from {day}.",
               "A file in our SharePoint library disappeared, nobody deleted it on purpose.",
               "Could you restore {share} to the state of Friday? Someone moved everything around."],
        "de": ["Ich habe versehentlich den Ordner '{folder}' auf {share} gelöscht, bitte aus dem Backup holen.",
               "Bitte die Version der Datei von {day} wiederherstellen."],
        "fr": ["J'ai supprimé le dossier '{folder}' par erreur, pouvez-vous le restaurer ?",
               "J'ai écrasé un fichier Excel sur {share}, il me faut la version de {day}."],
    }),
    S("shared_drive", "storage", 3, {
        "en": ["Network drive missing", "OneDrive not syncing", "Share full", "drive not mapped", "disk full"],
        "de": ["Laufwerk fehlt", "OneDrive synchronisiert nicht", "Laufwerk voll"],
        "fr": ["Lecteur réseau manquant", "OneDrive ne synchronise pas", "Partage plein"],
    }, {
        "en": ["The {S|P|G|H}: drive is not mapped anymore after the restart.",
               "OneDrive says sync is paused and there are {dozens of|many} conflicts.",
               "{share} is full, we can't save anything.",
               "Disk C: is full on my {device}, I can't save files anymore.",
               "Please create a new project folder '{project}' on {share} for our team."],
        "de": ["Das Laufwerk {S|P|G}: ist nach dem Neustart weg.", "OneDrive synchronisiert {when} nicht mehr.",
               "{share} ist voll, wir können nichts mehr speichern."],
        "fr": ["Le lecteur {S|P}: n'apparaît plus après le redémarrage.", "OneDrive ne se synchronise plus.",
               "Le partage {share} est plein."],
    }),
    S("shared_drive", {"network": 0.5, "storage": 0.5}, 1.5, {
        "en": ["Network drives not reachable", "file server down?", "drives slow from home"],
        "de": ["Laufwerke nicht erreichbar", "Fileserver langsam"],
        "fr": ["Lecteurs réseau inaccessibles"],
    }, {
        "en": ["The network drives are not reachable from home, other things work.",
               "Opening files on {share} takes minutes {when}.",
               "\\\\fs01 is not reachable for the whole {team} team."],
        "de": ["Die Netzlaufwerke sind aus dem Homeoffice nicht erreichbar.", "Dateien auf {share} öffnen sich "
               "extrem langsam."],
        "fr": ["Les lecteurs réseau sont inaccessibles en télétravail."],
    }),
    # ---------------------------------------------------------------- other: questions and follow-ups
    S("other", "email", 1.5, {
        "en": ["Question about out of office", "signature", "how to share calendar"],
        "de": ["Frage Signatur", "Kalender freigeben"],
        "fr": ["Question signature mail"],
    }, {
        "en": ["How do I set an automatic reply for my holiday?", "Where can I get the new email signature "
               "template?", "How can I share my calendar with my assistant?"],
        "de": ["Wie kann ich meinen Kalender für meine Assistenz freigeben?", "Wo finde ich die neue Signatur?"],
        "fr": ["Comment partager mon calendrier avec mon assistante ?"],
    }),
    S("other", "network", 1, {
        "en": ["Guest wifi password", "wifi for visitors", "question about network"],
        "de": ["Gäste-WLAN Passwort"],
        "fr": ["Code wifi invités"],
    }, {
        "en": ["What is the guest wifi password this week? We have visitors at {site}.",
               "Can we get a wifi voucher for a workshop with 20 external people on {day}?"],
        "de": ["Wie lautet das Gäste-WLAN-Passwort diese Woche?"],
        "fr": ["Quel est le code du wifi invités cette semaine ?"],
    }),
    S("other", "hardware", 1.5, {
        "en": ["Meeting room screen", "How to connect to projector", "borrow a laptop"],
        "de": ["Beamer im Besprechungsraum", "Leihlaptop"],
        "fr": ["Écran salle de réunion", "Prêt d'un PC"],
    }, {
        "en": ["How do I connect my laptop to the screen in {room}? The HDMI cable is missing.",
               "Can I borrow a loan laptop for a trade fair from {day}?",
               "Could someone set up the projector in {room} before our 9:00 meeting?"],
        "de": ["Können wir für die Messe einen Leihlaptop bekommen?", "Der Beamer in {room} zeigt nichts an."],
        "fr": ["Comment brancher mon PC sur l'écran de la salle {room} ?"],
    }),
    S("other", "software", 1.5, {
        "en": ["Question", "How to in {app}", "training request"],
        "de": ["Frage zu {app}", "Schulung"],
        "fr": ["Question {app}", "Formation"],
    }, {
        "en": ["Is there a training for {bizapp}? I'm new in the team.", "How do I change the default language "
               "of {app} to English?", "Where do I find the user guide for {bizapp}?"],
        "de": ["Gibt es eine Schulung für {bizapp}?", "Wie stelle ich {app} auf Deutsch um?"],
        "fr": ["Existe-t-il une formation {bizapp} ?", "Comment passer {app} en français ?"],
    }),
    S("other", "telephony", 1, {
        "en": ["Phone list", "mobile phone policy", "new phone number"],
        "de": ["Telefonliste", "Diensthandy Frage"],
        "fr": ["Annuaire téléphonique"],
    }, {
        "en": ["Can I use my private phone for work calls and get the costs back?", "How do I change the "
               "name shown on my extension {ext}?", "Who orders mobile contracts for new employees?"],
        "de": ["Wie ändere ich den angezeigten Namen auf meinem Telefon?"],
        "fr": ["Comment modifier le nom affiché sur mon poste {ext} ?"],
    }),
    S("other", {"access": 0.3, "software": 0.2, "hardware": 0.15, "network": 0.1, "email": 0.1, "printing": 0.05,
                "telephony": 0.05, "storage": 0.05}, 3, {
        "en": ["Follow up", "Any update?", "Still not fixed", "Ticket {inc}", "Call me please", "re: my issue"],
        "de": ["Nachfrage", "Status?", "Immer noch nicht gelöst", "Rückruf bitte"],
        "fr": ["Relance", "Des nouvelles ?", "Toujours pas résolu", "Merci de me rappeler"],
    }, {
        "en": ["Any update on {inc}? It's still not working.", "Please call me back about my issue from "
               "yesterday, it's easier to explain on the phone.", "Same problem as last week, see {inc}.",
               "Doesn't work. See screenshot.", "Could someone come by my desk on the {floor} floor? Thanks.",
               "The fix from yesterday didn't help, it's back."],
        "de": ["Gibt es Neuigkeiten zu {inc}?", "Bitte ruft mich zurück, es geht um mein Problem von gestern.",
               "Das Problem ist wieder da, siehe {inc}."],
        "fr": ["Des nouvelles du ticket {inc} ?", "Merci de me rappeler au sujet de mon problème d'hier.",
               "Le problème est revenu, voir {inc}."],
    }),
]  # fmt: skip

GREETINGS = {
    "en": ["Hi,", "Hello,", "Hi team,", "Dear Service Desk,", "Hello IT,", "Good morning,", "Hi all,", "Hey,", ""],
    "de": ["Hallo,", "Hallo zusammen,", "Guten Morgen,", "Liebes IT-Team,", "Hi,", "Sehr geehrte Damen und Herren,",
           "Moin,", ""],
    "fr": ["Bonjour,", "Bonjour à tous,", "Bonjour l'équipe IT,", "Salut,", "Madame, Monsieur,", ""],
}  # fmt: skip
SMALLTALK = {
    "en": ["Hope you're well.", "Sorry to bother you again.", "Quick one:", "I hope this is the right place.",
           "Not sure who to ask, so here goes.", "Happy Monday!", "Sorry for the long mail."],
    "de": ["Ich hoffe, es geht euch gut.", "Sorry, dass ich schon wieder störe.", "Kurze Frage:",
           "Ich weiß nicht, ob ich hier richtig bin."],
    "fr": ["J'espère que vous allez bien.", "Désolé de vous déranger encore.", "Petite question :",
           "Je ne sais pas si je suis au bon endroit."],
}  # fmt: skip
DETAILS = {
    "en": ["My asset tag is {asset}.", "I'm on the {floor} floor in {site}.", "It started {when}.",
           "I already restarted {twice|the laptop|everything}.", "{colleague} has the same issue.",
           "It's urgent, I have a customer meeting at {d}:30.", "User: {user}.", "Computer name {asset}.",
           "I'm working from home today.", "Tried it on another PC, same result.", "No error message at all."],
    "de": ["Meine Inventarnummer ist {asset}.", "Ich sitze im {floor_de} in {site}.", "Es fing {when} an.",
           "Neustart habe ich schon versucht.", "{colleague} hat das gleiche Problem.", "Eilt, Kundentermin um {d}:30.",
           "Benutzer: {user}.", "Ich bin heute im Homeoffice."],
    "fr": ["Mon numéro d'inventaire est {asset}.", "Je suis au {floor_fr} à {site}.", "Ça a commencé {when}.",
           "J'ai déjà redémarré.", "{colleague} a le même problème.", "C'est urgent, j'ai un client à {d}h30.",
           "Utilisateur : {user}.", "Je suis en télétravail aujourd'hui."],
}  # fmt: skip
ASIDES = {
    "en": ["PS: the printer on the {floor} floor is out of paper too, but that's not urgent.",
           "By the way, thanks for the quick help with my VPN last week!",
           "You can reach me on my mobile {mobile}.", "I'm writing from a colleague's laptop.",
           "Unrelated, but my mouse is dying too :)", "Also the coffee machine is broken again, not your job I know.",
           "I tried to call the hotline but nobody picked up.", "I already reset my password, no change.",
           "Sorry for the many emails today.", "I'm on a Teams call until 11, please write rather than call."],
    "de": ["PS: Der Drucker im {floor_de} hat auch keinen Toner mehr.", "Ihr erreicht mich am Handy unter {mobile}.",
           "Danke nochmal für die schnelle Hilfe mit dem Laptop letzte Woche!",
           "Ich habe schon bei der Hotline angerufen, aber niemand ging ran.", "Passwort habe ich schon geändert."],
    "fr": ["PS : l'imprimante du {floor_fr} est encore en panne, mais ce n'est pas urgent.",
           "Vous pouvez me joindre sur mon portable au {mobile}.", "Merci encore pour l'aide sur le VPN la semaine "
           "dernière !", "J'ai essayé d'appeler la hotline sans succès."],
}  # fmt: skip
CLOSINGS = {
    "en": ["Thanks", "Thanks!", "Thank you", "Best regards", "Kind regards", "Cheers", "Thanks in advance", "BR", ""],
    "de": ["Danke", "Vielen Dank", "Viele Grüße", "Beste Grüße", "Danke und Gruß", "LG", "Mit freundlichen Grüßen",
           ""],
    "fr": ["Merci", "Merci d'avance", "Cordialement", "Bien cordialement", "Bonne journée", "Bien à vous", ""],
}  # fmt: skip
SIGN_OFFS = {
    "en": ["Sent from my iPhone", "Sent from Outlook for Android",
           "Please consider the environment before printing this e-mail.",
           "This e-mail and any attachments are confidential and intended solely for the addressee. If you have "
           "received it in error, please notify the sender and delete it."],
    "de": ["Von meinem iPhone gesendet", "Bitte denken Sie an die Umwelt, bevor Sie diese E-Mail ausdrucken.",
           "Diese E-Mail enthält vertrauliche Informationen. Wenn Sie nicht der richtige Adressat sind, informieren "
           "Sie bitte sofort den Absender und löschen Sie diese E-Mail."],
    "fr": ["Envoyé de mon iPhone", "Pensez à l'environnement avant d'imprimer ce message.",
           "Ce message et ses pièces jointes sont confidentiels. Si vous l'avez reçu par erreur, merci d'en "
           "avertir l'expéditeur et de le supprimer."],
}  # fmt: skip
VAGUE_TITLES = {
    "en": ["Help", "Problem", "Issue", "Question", "IT problem", "Request", "Please help", "urgent", "(no subject)",
           "Support needed", "quick question", "not working", "IT"],
    "de": ["Problem", "Hilfe", "Anfrage", "Störung", "Frage", "dringend", "geht nicht"],
    "fr": ["Problème", "Demande", "Aide", "Question", "Incident", "urgent", "ne marche pas"],
}  # fmt: skip
PREFIXES = {
    "en": ["RE: ", "FW: ", "Fwd: ", "[EXTERNAL] ", "URGENT: ", "URGENT - "],
    "de": ["AW: ", "WG: ", "RE: ", "Dringend: ", "[EXTERN] "],
    "fr": ["RE : ", "TR : ", "Fwd: ", "URGENT : ", "[EXTERNE] "],
}  # fmt: skip
SHORT_BODIES = {
    "en": ["see subject", "as discussed on the phone", "see title, thanks", "?", "pls help"],
    "de": ["siehe Betreff", "wie telefonisch besprochen", "s. Betreff"],
    "fr": ["voir objet", "comme convenu au téléphone", "cf. objet"],
}  # fmt: skip

_TOKEN = re.compile(r"\{([^{}]*)\}")
_KEYBOARD = "qwertyuiopasdfghjklzxcvbnm"


class Writer:
    """Expands templates with one seeded random source: ``{a|b}`` picks an alternative, ``{slot}`` a filler."""

    def __init__(self, rng: random.Random, lang: str) -> None:
        self.rng = rng
        self.lang = lang

    def pick(self, options: list[str]) -> str:
        return self.expand(self.rng.choice(options))

    def expand(self, text: str) -> str:
        for _ in range(20):  # fillers may contain alternatives and slots of their own
            expanded = _TOKEN.sub(self._one, text)
            if expanded == text:
                break
            text = expanded
        return text

    def _one(self, match: re.Match[str]) -> str:
        inner = match.group(1)
        if "|" in inner or inner == "":
            return self.rng.choice(inner.split("|"))
        values = SLOTS[inner]
        if isinstance(values, dict):
            values = values[self.lang]
        return self.rng.choice(values)


def typos(text: str, rng: random.Random, rate: float) -> str:
    """Swap, drop, double or mistype letters in about `rate` of the words (longer than three letters)."""
    words = text.split(" ")
    for i, word in enumerate(words):
        if len(word) > 3 and word.isalpha() and rng.random() < rate:
            j = rng.randrange(1, len(word) - 1)
            op = rng.randrange(4)
            if op == 0:
                word = word[:j] + word[j + 1] + word[j] + word[j + 2 :]
            elif op == 1:
                word = word[:j] + word[j + 1 :]
            elif op == 2:
                word = word[:j] + word[j] + word[j:]
            else:
                word = word[:j] + rng.choice(_KEYBOARD) + word[j + 1 :]
            words[i] = word
    return " ".join(words)


def ticket(rng: random.Random, scenario: Scenario) -> tuple[str, str, str]:
    lang = rng.choices(LANGS, LANG_WEIGHTS)[0]
    if lang not in scenario.core:
        lang = "en"
    w = Writer(rng, lang)
    # greeting, closing and signature are now and then in another language than the request itself
    frame = Writer(rng, rng.choice(LANGS) if rng.random() < 0.12 else lang)

    sentences = scenario.core[lang]
    count = 2 if rng.random() < 0.3 and len(sentences) > 1 else 1
    core = " ".join(w.expand(template) for template in rng.sample(sentences, count))

    if rng.random() < 0.07:
        body_lines = [w.pick(SHORT_BODIES[lang])]
    else:
        greeting = frame.pick(GREETINGS[frame.lang])
        text = core
        if rng.random() < 0.25:
            text = f"{w.pick(SMALLTALK[lang])} {text}"
        for _ in range(rng.choice([0, 0, 1, 1, 2])):
            text = f"{text} {w.pick(DETAILS[lang])}"
        if rng.random() < 0.18:
            text = f"{text}\n\n{w.pick(ASIDES[lang])}"
        body_lines = [greeting, "", text] if greeting else [text]
        closing = frame.pick(CLOSINGS[frame.lang])
        if closing:
            body_lines += ["", closing]
        if rng.random() < 0.5:
            body_lines += signature(frame, rng)
    body = "\n".join(body_lines).strip()

    roll = rng.random()
    if roll < 0.14:
        title = w.pick(VAGUE_TITLES[lang])
    elif roll < 0.22:
        title = core.split(". ")[0][:60]
    else:
        title = w.pick(scenario.titles.get(lang) or scenario.titles["en"])
    if rng.random() < 0.18:
        title = w.pick(PREFIXES[lang]) + title
    if rng.random() < 0.05:
        title = title.upper()

    if rng.random() < 0.25:
        rate = rng.choice([0.03, 0.06, 0.1])
        body = typos(body, rng, rate)
        title = typos(title, rng, rate)
    if rng.random() < 0.06:
        body = body.lower()
    return lang, title, body


def signature(w: Writer, rng: random.Random) -> list[str]:
    lines = ["", "--" if rng.random() < 0.5 else "", w.expand("{first} {last}")]
    if rng.random() < 0.7:
        lines.append(f"{rng.choice(ROLES)} | {rng.choice(DEPTS)}")
    if rng.random() < 0.5:
        lines.append(rng.choice(COMPANY))
    if rng.random() < 0.6:
        label = {"en": "Phone", "de": "Tel.", "fr": "Tél."}[w.lang]
        lines.append(w.expand(f"{label}: {{phone}}" + (" | Mobile: {mobile}" if rng.random() < 0.5 else "")))
    if rng.random() < 0.35:
        lines += ["", w.pick(SIGN_OFFS[w.lang])]
    return lines


def generate(rows: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    weights = [s.weight for s in SCENARIOS]
    categories = sorted({c for s in SCENARIOS for c in s.categories})
    intents = sorted({s.intent for s in SCENARIOS})
    out: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    while len(out) < rows:
        scenario = rng.choices(SCENARIOS, weights)[0]
        _, title, body = ticket(rng, scenario)
        if (title, body) in seen:
            continue
        seen.add((title, body))
        names = list(scenario.categories)
        category = rng.choices(names, [scenario.categories[n] for n in names])[0]
        intent = scenario.intent
        if rng.random() < NOISE:
            category = rng.choice([c for c in categories if c != category])
        if rng.random() < NOISE:
            intent = rng.choice([i for i in intents if i != intent])
        out.append({"title": title, "body": body, "category": category, "intent": intent})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2500)
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "it_tickets.csv")
    args = parser.parse_args()

    tickets = generate(args.rows, args.seed)
    with args.out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["title", "body", "category", "intent"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(tickets)
    print(f"wrote {len(tickets)} tickets to {args.out}")


if __name__ == "__main__":
    main()
