// The one Eta setup of the project: pages (http/pages.ts) and mails (services/mail-templates.ts)
// render files under views/ with it. HTML is escaped by default (`<%= %>`; `<%~ %>` only for
// markup a template itself produced, such as a layout's body); plain text, which a mail client
// shows as is, is rendered by a second engine that does not escape.
import { Eta } from 'eta';

import { VIEWS_DIRECTORY } from './paths.ts';

export { VIEWS_DIRECTORY };

/** The name pages and mails sign with. */
export const PRODUCT_NAME = 'Latchkey';

/** Renders HTML views: every interpolation escaped. */
export const htmlTemplates = new Eta({ views: VIEWS_DIRECTORY, autoEscape: true, cache: true });

/**
 * Renders plain-text views (the text part of a mail): nothing to escape, and escaping would show
 * `&amp;`. Line breaks are kept as written (a tag trims the one after it only when it ends in `-%>`).
 */
export const textTemplates = new Eta({ views: VIEWS_DIRECTORY, autoEscape: false, autoTrim: false, cache: true });
