export class Controller {}
