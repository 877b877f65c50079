// Reaches into the proxy's sources by path instead of importing @veloflux/config.
import { loadConfigText } from '../../proxy/src/config/load.ts';
export const load = loadConfigText;
