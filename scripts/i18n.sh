#!/bin/sh
# Re-extract the pages' texts and update both catalogues (zh_CN and en). The .po files are
# compiled in memory at run time (fairslot.web.i18n), so nothing else needs building.
set -eu
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
LOCALE=src/fairslot/web/locale
KEYWORDS="-k N_ -k InvalidInput -k NotFound -k Conflict -k Forbidden -k QuotaExceeded
  -k TooManyRequests -k Unauthenticated -k FairslotError -k DeskLimit"
# shellcheck disable=SC2086
"$BIN/pybabel" extract -F babel.cfg $KEYWORDS --sort-output \
  --project fairslot -o "$LOCALE/messages.pot" src/fairslot
for lang in zh_CN en; do
  if [ -f "$LOCALE/$lang/LC_MESSAGES/messages.po" ]; then
    "$BIN/pybabel" update --no-fuzzy-matching -i "$LOCALE/messages.pot" -d "$LOCALE" -l "$lang"
  else
    "$BIN/pybabel" init -i "$LOCALE/messages.pot" -d "$LOCALE" -l "$lang"
  fi
done
